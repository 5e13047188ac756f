"""The headless actions layer: one function per user verb, shared by `clens` and the window.

Each verb takes plain arguments and a TaskState (progress, cancel) and returns a result dataclass: the
rows, the failures, the figures, and what they were computed for (model fingerprint, gallery), so a
front end can drop a result that arrived after the state it belongs to was replaced. Nothing here
prints or knows about Qt; `clens` formats the results and the window hands them to the Session.
A new verb is one function here, one parser entry in `cl_core.cli`, and, where the window shows it,
one panel that listens to the Session.
"""

from cl_core.actions.analysis import Diagnosis, Evaluation, diagnose, evaluate
from cl_core.actions.demo import DemoFiles, demo_available, demo_files, demo_for_model, demo_of_gallery
from cl_core.actions.embed import embed_inputs, save_embeddings
from cl_core.actions.gallery import IndexBuilt, build_index, open_gallery
from cl_core.actions.model import ModelOpened, open_model
from cl_core.actions.search import open_search_index, search
from cl_core.actions.train import Trained, train

# what a front end holds between verbs (one cache, one decoder pool), the result types it receives and the
# choices it offers; front ends import these from here, never from the pipeline's modules
from cl_core.choices import DEVICE_CHOICES, FUSIONS, INDEX_KINDS
from cl_core.demo.galleries import DEMOS
from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.items import EmbedResult
from cl_core.models.detect import looks_like_checkpoint
from cl_core.search.build import GalleryOpened
from cl_core.search.query import SearchRequest, SearchResult

__all__ = [
    "DEMOS", "DEVICE_CHOICES", "FUSIONS", "INDEX_KINDS", "looks_like_checkpoint",
    "DecodePool", "DemoFiles", "EmbedResult", "EmbeddingCache", "Diagnosis", "Evaluation", "GalleryOpened", "IndexBuilt", "ModelOpened", "SearchRequest",
    "SearchResult", "Trained", "build_index", "demo_available", "demo_files", "demo_for_model", "demo_of_gallery", "diagnose", "embed_inputs",
    "evaluate", "open_gallery", "open_model", "open_search_index", "save_embeddings", "search", "train",
]
