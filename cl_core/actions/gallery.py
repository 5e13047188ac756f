"""Open a gallery for the open model (embed through the cache, then index), or build an index folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.gallery import GalleryEmbedding, embed_gallery
from cl_core.embed.items import summarise_failures
from cl_core.embed.sources import open_source
from cl_core.errors import Cancelled, ClensError
from cl_core.models.base import BaseModel
from cl_core.search import store
from cl_core.search.build import GalleryOpened, index_embedding, reuse_or_build
from cl_core.task import TaskState


@dataclass
class IndexBuilt:
    out: Path | None  # None: cancelled or nothing embedded, no index written
    embedding: GalleryEmbedding
    index: store.IndexSet | None

    def describe(self) -> str:
        """Items, dimension, and per modality: count, kind, measured recall, bytes per vector."""
        return store.describe(self.index) if self.index is not None else "no index"


def embed_source(model: BaseModel, source: str | Path, cache: EmbeddingCache | None = None,
                 state: TaskState | None = None, pool: DecodePool | None = None,
                 allow_outside: bool = False) -> GalleryEmbedding:
    """A folder, manifest or demo:NAME, embedded cache first; failures listed, a cancel keeps the work.
    `allow_outside`: a manifest may name files outside its own folder."""
    emb = embed_gallery(model, open_source(source, allow_outside), cache, state, pool)
    emb.failures = summarise_failures(emb.failures)
    return emb


def open_gallery(model: BaseModel, source: str | Path, cache: EmbeddingCache, kind: str = "auto",
                 state: TaskState | None = None, pool: DecodePool | None = None,
                 allow_outside: bool = False) -> GalleryOpened:
    """The window's gallery: embedded, then indexed under the cache folder (reused while nothing changed)."""
    emb = embed_source(model, source, cache, state, pool, allow_outside)
    if emb.cancelled or not emb.rows:
        return GalleryOpened(str(source), emb, None)
    index = reuse_or_build(model, emb, cache.root, kind, state, cache)
    if [r.source for r in index.rows] == [r.source for r in emb.rows]:
        emb.vectors = index.vectors  # the same rows: keep one (memory-mapped) copy, not two
    return GalleryOpened(str(source), emb, index)


def build_index(model: BaseModel, source: str | Path, out: str | Path, kind: str = "auto",
                cache: EmbeddingCache | None = None, state: TaskState | None = None,
                pool: DecodePool | None = None, allow_outside: bool = False, engine: str = "local",
                address: str | None = None, actors: int | None = None, shard_files: int | None = None) -> IndexBuilt:
    """`clens index build`: embed (cache first), index, write the folder atomically. `engine="ray"`: the
    embedding runs on Ray actors (`address` of a cluster, else a local Ray), merged through the cache."""
    if engine == "ray":
        from cl_core.embed.distributed import SHARD_FILES, embed_on_ray

        if cache is None:
            raise ClensError("--engine ray merges what the workers embed through the cache: drop --no-cache")
        gallery = open_source(source, allow_outside)
        run = embed_on_ray(model, gallery, cache, state, address, actors, model.device.type,  # same checkpoint:
                           allow_pickle=True, shard_files=shard_files or SHARD_FILES)  # the workers open what the driver opened (fingerprint checked)
        if run.cancelled:
            stub = GalleryEmbedding(gallery, "", failures=run.failures, cancelled=True, embedded=run.embedded)
            return IndexBuilt(None, stub, None)
    emb = embed_source(model, source, cache, state, pool, allow_outside)
    if emb.cancelled or not emb.rows:
        return IndexBuilt(None, emb, None)
    try:
        index_set = index_embedding(model, emb, kind, state)
    except Cancelled:  # stopped while indexing: the embeddings are in the cache, nothing is written
        emb.cancelled = True
        return IndexBuilt(None, emb, None)
    folder = store.save(index_set, out)
    return IndexBuilt(folder, emb, index_set)
