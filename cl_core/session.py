"""The Session: one evented object owning model, embedded items, failures, selection, gallery, index
and search results.

Panels receive it in their constructor and listen to its signals, never to each other (glue's hub,
napari's ViewerModel). It is plain Python (psygnal), so every GUI action can be scripted headless.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from psygnal import Signal

from cl_core.embed.gallery import GalleryEmbedding
from cl_core.embed.items import EmbedResult, Failure
from cl_core.modality import Item
from cl_core.models.base import BaseModel
from cl_core.search.query import Hit
from cl_core.search.store import IndexSet


class Session:
    model_changed = Signal(object)  # the new model, or None
    items_changed = Signal()  # items/vectors appended or cleared
    failures_added = Signal(list)  # list[Failure] just reported
    selection_changed = Signal(object)  # frozenset[int] of item indices
    gallery_changed = Signal()  # a gallery was embedded and indexed, or dropped
    results_changed = Signal()  # new search results (possibly none)

    def __init__(self) -> None:
        self.model: BaseModel | None = None
        self.items: list[Item] = []
        self.vectors = np.zeros((0, 0), np.float32)
        self.failures: list[Failure] = []
        self.selection: frozenset[int] = frozenset()
        self.pending_items: list[Item] = []  # kept across a model change, to re-embed
        self.gallery: GalleryEmbedding | None = None
        self.index: IndexSet | None = None
        self.results: list[Hit] = []

    def set_model(self, model: BaseModel | None) -> None:
        """A new model makes old vectors meaningless: they are dropped, items kept for re-embedding."""
        self.model = model
        self.vectors = np.zeros((0, model.embed_dim if model else 0), np.float32)
        pending = self.items
        self.items = []
        self.selection = frozenset()
        self.pending_items = pending
        self.set_gallery(None, None)
        self.model_changed.emit(model)
        self.items_changed.emit()

    def set_gallery(self, gallery: GalleryEmbedding | None, index: IndexSet | None) -> None:
        """A gallery belongs to the model that embedded it: refused if the fingerprints differ."""
        if index is not None and gallery is not None and index.model_fingerprint != gallery.model_fingerprint:
            raise ValueError("the index and the gallery come from different models")
        self.gallery, self.index = gallery, index
        if gallery is not None:
            self.report(gallery.failures)
        self.gallery_changed.emit()
        self.set_results([])

    def set_results(self, hits: list[Hit]) -> None:
        self.results = list(hits)
        self.results_changed.emit()

    def add_result(self, result: EmbedResult) -> None:
        """Append what a job embedded (also when it was cancelled part-way) and report its failures."""
        if self.model is None:
            return
        if len(result.items):
            if result.vectors.shape[1] != self.model.embed_dim:
                raise ValueError(f"result has {result.vectors.shape[1]}-d vectors, model gives {self.model.embed_dim}-d")
            base = self.vectors if self.vectors.size else np.zeros((0, self.model.embed_dim), np.float32)
            self.vectors = np.concatenate([base, result.vectors.astype(np.float32)])
            self.items.extend(result.items)
            self.items_changed.emit()
        self.report(result.failures)

    def report(self, failures: Iterable[Failure]) -> None:
        new = list(failures)
        if new:
            self.failures.extend(new)
            self.failures_added.emit(new)

    def clear_items(self) -> None:
        self.items = []
        self.pending_items = []
        self.vectors = np.zeros((0, self.model.embed_dim if self.model else 0), np.float32)
        self.selection = frozenset()
        self.items_changed.emit()
        self.selection_changed.emit(self.selection)

    def select(self, indices: Iterable[int]) -> None:
        sel = frozenset(i for i in indices if 0 <= i < len(self.items))
        if sel != self.selection:
            self.selection = sel
            self.selection_changed.emit(sel)

    def similarity(self) -> np.ndarray:
        """Cosine similarity of every pair of embedded items, computed in fp32."""
        v = self.vectors.astype(np.float32, copy=False)
        return v @ v.T if len(v) else np.zeros((0, 0), np.float32)
