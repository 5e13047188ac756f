"""Gallery -> cached embeddings -> index folder, and reopening an index for the model that is open."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.gallery import GalleryEmbedding
from cl_core.errors import DimensionMismatchError
from cl_core.models.base import BaseModel
from cl_core.models.fingerprint import fingerprint_of
from cl_core.search import store
from cl_core.task import TaskState


@dataclass
class GalleryOpened:
    """A gallery embedded by one model and its index (None when cancelled or nothing embedded)."""

    source: str
    embedding: GalleryEmbedding
    index: store.IndexSet | None

    @property
    def model_fingerprint(self) -> str:
        return self.embedding.model_fingerprint



def model_record(model: BaseModel, fingerprint: str) -> dict[str, Any]:
    """What an index remembers of its model: enough to reopen it and to refuse another one."""
    return {"fingerprint": fingerprint, "name": model.name, "format": model.format,
            "source": str(Path(model.source).resolve()), "embed_dim": model.embed_dim,
            "modalities": [m.value for m in model.modalities]}


def content_key(emb: GalleryEmbedding) -> str:
    """Hash of what an index is built from (rows and vectors): equal keys, interchangeable indexes."""
    h = hashlib.sha256(emb.model_fingerprint.encode())
    for r in emb.rows:
        h.update(f"\0{r.sample_id}\0{r.source}\0{r.modality.value}".encode("utf-8", "surrogateescape"))
    h.update(json.dumps(metadata_columns(emb), sort_keys=True, default=str).encode("utf-8", "surrogateescape"))
    h.update(np.ascontiguousarray(emb.vectors, np.float32).tobytes())
    return h.hexdigest()


def metadata_columns(emb: GalleryEmbedding) -> dict[str, list[Any]]:
    """The gallery's metadata (a manifest's columns beyond id, files, text and label) as one value per row, so
    that a map can be coloured by any of them; a row whose entry lacks a column gets None."""
    entries = emb.gallery.entries
    names = list(dict.fromkeys(k for e in entries for k in e.meta))
    if not names:
        return {}
    plain = (str, int, float, bool)
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for r in emb.rows:
        meta = entries[r.entry].meta if 0 <= r.entry < len(entries) else {}
        for n in names:
            v = meta.get(n)
            columns[n].append(v if v is None or isinstance(v, plain) else str(v))
    return columns


def index_embedding(model: BaseModel, emb: GalleryEmbedding, kind: str = "auto",
                    state: TaskState | None = None) -> store.IndexSet:
    gallery = {"name": emb.gallery.name, "origin": emb.gallery.origin, "entries": len(emb.gallery.entries),
               "failures": len(emb.failures), "quarantined": len(emb.quarantined), "content": content_key(emb)}
    return store.build_index_set(emb.rows, emb.vectors, model_record(model, emb.model_fingerprint), gallery,
                                 kind, state, meta=metadata_columns(emb))


def reuse_or_build(model: BaseModel, emb: GalleryEmbedding, cache_root: str | Path, kind: str = "auto",
                   state: TaskState | None = None, memo: store.FileMemo | None = None) -> store.IndexSet:
    """The app's index for a gallery, kept under the cache folder: loaded when it was built from the same
    rows and vectors by the same model, else rebuilt (and the stale one replaced atomically)."""
    origin = hashlib.sha256(emb.gallery.origin.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    folder = Path(cache_root) / "indexes" / f"{emb.model_fingerprint[:16]}-{origin}"
    with _folder_lock(folder):  # two jobs of one process on one folder: the second loads what the first saved
        return _reuse_or_build(model, emb, folder, kind, state, memo)


_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _folder_lock(folder: Path) -> threading.Lock:
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(folder, threading.Lock())


def _reuse_or_build(model: BaseModel, emb: GalleryEmbedding, folder: Path, kind: str, state: TaskState | None,
                    memo: store.FileMemo | None) -> store.IndexSet:
    key = content_key(emb)
    try:
        found = store.load(folder, emb.model_fingerprint, model.embed_dim, memo)
        if found.manifest.get("gallery", {}).get("content") == key and (
                kind == "auto" or all(p.built.kind == kind for p in found.parts.values())):
            return found
    except (store.IndexFileError, DimensionMismatchError):
        pass  # missing, stale or damaged: rebuilt below
    store.save(index_embedding(model, emb, kind, state), folder)
    return store.load(folder, emb.model_fingerprint, model.embed_dim, memo)  # memory-mapped, not held twice


def open_index(folder: str | Path, model: BaseModel, cache: EmbeddingCache | None = None) -> store.IndexSet:
    """Load an index folder for `model`, refusing one built with another model or dimension."""
    return store.load(folder, fingerprint_of(model, cache.file_digest if cache is not None else None), model.embed_dim,
                      cache)


def gallery_key(index: store.IndexSet) -> str:
    """What an index's rows refer to: its content key (rows and vectors), else its folder."""
    return str(index.manifest.get("gallery", {}).get("content", index.folder))
