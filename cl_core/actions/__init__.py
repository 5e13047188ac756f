"""The headless actions layer: one function per user verb, shared by `clens` and the window.

Each verb takes plain arguments and a TaskState (progress, cancel) and returns a result dataclass: the
rows, the failures, the figures, and what they were computed for (model fingerprint, gallery), so a
front end can drop a result that arrived after the state it belongs to was replaced. Nothing here
prints or knows about Qt; `clens` formats the results and the window hands them to the Session.
A new verb is one function in a module here, one entry in `_EXPORTS`, one parser entry in `cl_core.cli`,
and, where the window shows it, one panel that listens to the Session.

Names are imported on first use (PEP 562), so `clens demo` does not pay for torch and faiss. No module
here is named like a verb it exports (searching.py holds `search`): importing a submodule sets the package
attribute of its name, which would hide the function.
Besides the verbs this exports what a front end holds between verbs (one cache, one decoder pool), the
result types it receives and the choices it offers: front ends import these from here, never from the
pipeline's modules (an import-linter contract holds them to it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "cl_core.actions.analysis": ("Diagnosis", "Evaluation", "check_templates", "diagnose",
                                 "diagnose_gallery", "evaluate", "evaluate_gallery"),
    "cl_core.actions.demo": ("DemoFiles", "demo_available", "demo_files", "demo_for_model", "demo_of_gallery"),
    "cl_core.actions.caching": ("cache_info", "cache_prune"),
    "cl_core.actions.checkup": ("doctor",),
    "cl_core.actions.comparing": ("Compared", "compare", "compare_search", "open_comparison"),
    "cl_core.search.compare": ("Comparison", "hit_key", "overlap_at_k"),
    "cl_core.actions.embed": ("embed_inputs", "save_embeddings"),
    "cl_core.actions.explaining": ("Explained", "colour_map", "explain", "overlay_picture", "save_picture",
                                   "spectrogram_picture"),
    "cl_core.actions.gallery": ("IndexBuilt", "build_index", "embed_source", "open_gallery"),
    "cl_core.actions.model": ("ModelOpened", "open_model"),
    "cl_core.actions.projecting": ("Placed", "describe_projection", "place", "project"),
    "cl_core.analysis.projection": ("Projected",),
    "cl_core.analysis.colouring": ("MISSING_CATEGORY", "Colouring", "colour_columns", "colouring"),
    "cl_core.actions.searching": ("export_hits", "open_search_index", "read_index", "search"),
    "cl_core.actions.training": ("Trained", "train"),
    "cl_core.actions.slides": ("slide_heatmap", "save_heat", "embed_slide", "heat_of", "query_vector",
                               "overview_picture", "slide_width", "SlideHeat", "SlideEmbedding"),
    "cl_core.demo.worlds.slide": ("make_slide",),
    "cl_core.actions.tissue": ("infer_markers", "counterfactual", "check_channels"),
    "cl_core.analysis.biomarkers": ("MarkersInferred",),
    "cl_core.analysis.counterfactual": ("Shift", "CAVEAT"),
    "cl_core.choices": ("ARCH_NAMES", "AUTO_FUSION", "DEFAULT_MIN_RELEVANCE", "DEFAULT_TEMPLATES", "DEVICE_CHOICES", "FUSIONS", "INDEX_KINDS", "PROJECTIONS",
                       "own_fusion"),
    "cl_core.demo.galleries": ("DEMOS",),
    "cl_core.embed.cache": ("EmbeddingCache",),
    "cl_core.embed.decode_pool": ("DecodePool",),
    "cl_core.embed.items": ("EmbedResult",),
    "cl_core.embed.thumbnails": ("thumbnails",),
    "cl_core.readers.thumbnail": ("default_channel_names", "ChannelLook", "PSEUDOCOLOURS"),
    "cl_core.models.detect": ("looks_like_checkpoint",),
    "cl_core.search.build": ("GalleryOpened",),
    "cl_core.search.query": ("Hit", "SearchRequest", "SearchResult"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from cl_core.actions.analysis import (  # noqa: F401 - re-exported lazily
        Diagnosis,
        Evaluation,
        check_templates,
        diagnose,
        diagnose_gallery,
        evaluate,
        evaluate_gallery,
    )
    from cl_core.actions.caching import cache_info, cache_prune  # noqa: F401 - re-exported lazily
    from cl_core.actions.checkup import doctor  # noqa: F401 - re-exported lazily
    from cl_core.actions.comparing import (  # noqa: F401 - re-exported lazily
        Compared,
        compare,
        compare_search,
        open_comparison,
    )
    from cl_core.actions.demo import DemoFiles, demo_available, demo_files, demo_for_model, demo_of_gallery  # noqa: F401 - re-exported lazily
    from cl_core.actions.embed import embed_inputs, save_embeddings  # noqa: F401 - re-exported lazily
    from cl_core.actions.explaining import (  # noqa: F401 - re-exported lazily
        Explained,
        colour_map,
        explain,
        overlay_picture,
        save_picture,
        spectrogram_picture,
    )
    from cl_core.actions.gallery import IndexBuilt, build_index, embed_source, open_gallery  # noqa: F401 - re-exported lazily
    from cl_core.actions.model import ModelOpened, open_model  # noqa: F401 - re-exported lazily
    from cl_core.actions.projecting import Placed, describe_projection, place, project  # noqa: F401 - re-exported lazily
    from cl_core.actions.searching import export_hits, open_search_index, read_index, search  # noqa: F401 - re-exported lazily
    from cl_core.actions.slides import (  # noqa: F401 - re-exported lazily
        SlideEmbedding,
        SlideHeat,
        embed_slide,
        heat_of,
        overview_picture,
        query_vector,
        save_heat,
        slide_heatmap,
        slide_width,
    )
    from cl_core.actions.tissue import (  # noqa: F401 - re-exported lazily
        check_channels,
        counterfactual,
        infer_markers,
    )
    from cl_core.actions.training import Trained, train  # noqa: F401 - re-exported lazily
    from cl_core.analysis.biomarkers import MarkersInferred  # noqa: F401 - re-exported lazily
    from cl_core.analysis.colouring import (  # noqa: F401 - re-exported lazily
        MISSING_CATEGORY,
        Colouring,
        colour_columns,
        colouring,
    )
    from cl_core.analysis.counterfactual import CAVEAT, Shift  # noqa: F401 - re-exported lazily
    from cl_core.analysis.projection import Projected  # noqa: F401 - re-exported lazily
    from cl_core.choices import (  # noqa: F401 - re-exported lazily
        ARCH_NAMES,
        AUTO_FUSION,
        DEFAULT_MIN_RELEVANCE,
        DEFAULT_TEMPLATES,
        DEVICE_CHOICES,
        FUSIONS,
        INDEX_KINDS,
        PROJECTIONS,
        own_fusion,
    )
    from cl_core.demo.galleries import DEMOS  # noqa: F401 - re-exported lazily
    from cl_core.demo.worlds.slide import make_slide  # noqa: F401 - re-exported lazily
    from cl_core.embed.cache import EmbeddingCache  # noqa: F401 - re-exported lazily
    from cl_core.embed.decode_pool import DecodePool  # noqa: F401 - re-exported lazily
    from cl_core.embed.items import EmbedResult  # noqa: F401 - re-exported lazily
    from cl_core.embed.thumbnails import thumbnails  # noqa: F401 - re-exported lazily
    from cl_core.models.detect import looks_like_checkpoint  # noqa: F401 - re-exported lazily
    from cl_core.readers.thumbnail import (  # noqa: F401 - re-exported lazily
        PSEUDOCOLOURS,
        ChannelLook,
        default_channel_names,
    )
    from cl_core.search.build import GalleryOpened  # noqa: F401 - re-exported lazily
    from cl_core.search.compare import Comparison, hit_key, overlap_at_k  # noqa: F401 - re-exported lazily
    from cl_core.search.query import Hit, SearchRequest, SearchResult  # noqa: F401 - re-exported lazily
