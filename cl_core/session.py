"""The Session: one evented object owning the model, embedded items, failures, selection, gallery, index,
query and search results.

Panels receive it in their constructor and listen to its signals, never to each other (glue's hub,
napari's ViewerModel). It is plain Python (psygnal), so every GUI action can be scripted headless.
It does no work of its own: results computed by the actions layer are handed to it, and it refuses a
result computed for a model or gallery that is no longer the open one (a late answer to an old request).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from psygnal import Signal

from cl_core.analysis.biomarkers import MarkersInferred
from cl_core.analysis.counterfactual import Shift
from cl_core.analysis.diagnostics import Diagnosis
from cl_core.analysis.evaluation import Evaluation
from cl_core.analysis.explain import Explained
from cl_core.analysis.projection import Projected
from cl_core.analysis.slide_heat import SlideHeat
from cl_core.embed.gallery import GalleryEmbedding
from cl_core.embed.items import EmbedResult
from cl_core.errors import Failure
from cl_core.modality import Item
from cl_core.models.base import BaseModel
from cl_core.models.fingerprint import fingerprint_of
from cl_core.search.build import GalleryOpened, gallery_key
from cl_core.search.compare import Comparison
from cl_core.search.query import Hit, SearchRequest, SearchResult
from cl_core.search.store import IndexSet


class Session:
    model_changed = Signal(object)  # the new model, or None
    items_changed = Signal()  # items/vectors appended or cleared
    failures_added = Signal(list)  # list[Failure] just reported
    selection_changed = Signal(object)  # frozenset[int] of item indices
    gallery_changed = Signal()  # a gallery was embedded and indexed, or dropped
    results_changed = Signal()  # new search results (possibly none)
    gallery_selection_changed = Signal(object)  # frozenset[int] of gallery (index) rows
    projection_changed = Signal()  # a map of the gallery was made, or dropped
    query_point_changed = Signal()  # where the shown results' query lands in the map (or None)
    explanation_changed = Signal()  # a map of why an item matched a query (or None)
    diagnosis_changed = Signal()  # the open gallery's geometry was measured (or dropped with its gallery)
    evaluation_changed = Signal()  # the open gallery's retrieval and zero-shot figures (or dropped with it)
    markers_changed = Signal()  # an H&E patch's inferred marker profile (or None)
    counterfactual_changed = Signal()  # the shift of H&E patches' profiles under an edited text (or None)
    slide_changed = Signal()  # a whole slide's heatmap (or None)
    comparison_changed = Signal()  # a second model on the open gallery, its figures and its results (or None)

    def __init__(self) -> None:
        self.model: BaseModel | None = None
        self.model_fingerprint: str | None = None
        self.items: list[Item] = []
        self.vectors = np.zeros((0, 0), np.float32)
        self.failures: list[Failure] = []
        self.selection: frozenset[int] = frozenset()
        self.pending_items: list[Item] = []  # kept across a model change, to re-embed
        self.gallery: GalleryEmbedding | None = None
        self.gallery_source: str | None = None  # kept across a model change, to reopen with the new model
        self.index: IndexSet | None = None
        self.query: SearchRequest | None = None
        self.query_vector: np.ndarray | None = None  # the fused query of the shown results
        self.results: list[Hit] = []
        self.results_below_threshold = False  # the results are the closest hits, none passing the threshold
        self.gallery_selection: frozenset[int] = frozenset()
        self.projection: Projected | None = None
        self.query_point: np.ndarray | None = None  # [2], the query placed by the map's own transform
        self.explanation: Explained | None = None  # where / when / which words made the shown item match
        self.diagnosis: Diagnosis | None = None  # the open gallery's geometry (gap, rank, hubs, cosines)
        self.evaluation: Evaluation | None = None  # the open gallery's Recall@K and zero-shot confusion
        self.comparison: Comparison | None = None  # a second model on the same gallery and query
        self.markers: MarkersInferred | None = None  # an H&E patch's marker profile from the open gallery
        self.counterfactual: Shift | None = None  # what editing a case's text does to its profiles (open gallery)
        self.slide: SlideHeat | None = None  # a whole slide's tiles scored against a query (any open model's)

    # ---- model -------------------------------------------------------------------------------

    def set_model(self, model: BaseModel | None, fingerprint: str | None = None) -> None:
        """A new model makes old vectors meaningless: they are dropped; items and the gallery's source are
        kept so the new model can embed them again (through the cache)."""
        self.model = model
        self.model_fingerprint = None if model is None else (fingerprint or fingerprint_of(model))
        self.vectors = np.zeros((0, model.embed_dim if model else 0), np.float32)
        pending = self.pending_items + self.items
        self.items = []
        self.selection = frozenset()
        self.pending_items = pending
        self._set_gallery(None, None, self.gallery_source)
        self.set_explanation(None)
        self.model_changed.emit(model)
        self.items_changed.emit()

    def is_current(self, fingerprint: str) -> bool:
        """Was a result computed with the open model? (An empty fingerprint is not checked.)"""
        return not fingerprint or fingerprint == self.model_fingerprint

    # ---- gallery and search ------------------------------------------------------------------

    def set_gallery(self, opened: GalleryOpened | None) -> bool:
        """A gallery opened by the open model; False (and nothing changes) if another model embedded it."""
        if opened is None:
            self._set_gallery(None, None, None)
            return True
        if self.model is None or not self.is_current(opened.model_fingerprint):
            return False
        self.report(opened.embedding.failures)
        if opened.index is None:
            return False
        if opened.index.model_fingerprint != opened.model_fingerprint:
            raise ValueError("the index and the gallery come from different models")
        self._set_gallery(opened.embedding, opened.index, opened.source)
        return True

    def _set_gallery(self, gallery: GalleryEmbedding | None, index: IndexSet | None, source: str | None) -> None:
        self.gallery, self.index, self.gallery_source = gallery, index, source
        self.gallery_changed.emit()
        self.query, self.query_vector, self.results = None, None, []
        self.results_below_threshold = False
        self.results_changed.emit()
        self.select_gallery(())
        # what was measured on the gallery (the comparison too: against it as the first model embedded it)
        for name, changed in (("diagnosis", self.diagnosis_changed), ("evaluation", self.evaluation_changed),
                              ("markers", self.markers_changed), ("counterfactual", self.counterfactual_changed),
                              ("comparison", self.comparison_changed)):
            if getattr(self, name) is not None:
                setattr(self, name, None)
                changed.emit()
        if self.projection is not None:
            self.projection = None
            self.projection_changed.emit()

    def _is_for_open_gallery(self, fingerprint: str, gallery: str) -> bool:
        return self.index is not None and self.is_current(fingerprint) and gallery == gallery_key(self.index)

    def set_projection(self, projected: Projected | None) -> bool:
        """A map of the open gallery; refused (False) when made for another model or gallery."""
        if projected is not None and not self._is_for_open_gallery(projected.model_fingerprint, projected.gallery):
            return False
        self.projection = projected
        self.query_point = None
        self.projection_changed.emit()
        return True

    def set_query_point(self, point: np.ndarray | None, projected: Projected | None = None) -> bool:
        """The query's place in the map `projected` (refused when that is no longer the shown map)."""
        if point is not None and (projected is None or projected is not self.projection):
            return False
        self.query_point = None if point is None else np.asarray(point, np.float32).reshape(2)
        self.query_point_changed.emit()
        return True

    def set_explanation(self, explained: Explained | None) -> bool:
        """Show why an item matched; refused (False) when another model computed it."""
        if explained is not None and (self.model is None or not self.is_current(explained.model_fingerprint)):
            return False
        self.explanation = explained
        self.explanation_changed.emit()
        return True

    def set_diagnosis(self, diagnosis: Diagnosis | None) -> bool:
        """The open gallery's measured geometry; refused (False) when measured on a gallery no longer open."""
        if diagnosis is not None and (self.gallery is None or diagnosis.embedding is not self.gallery):
            return False
        self.diagnosis = diagnosis
        self.diagnosis_changed.emit()
        return True

    def set_evaluation(self, evaluation: Evaluation | None) -> bool:
        """The open gallery's evaluation; refused (False) when made on a gallery no longer open."""
        if evaluation is not None and (self.gallery is None or evaluation.embedding is not self.gallery):
            return False
        self.evaluation = evaluation
        self.evaluation_changed.emit()
        return True

    def set_markers(self, inferred: MarkersInferred | None) -> bool:
        """An inferred marker profile; refused (False) when its reference is not the open gallery."""
        if inferred is not None and (self.gallery is None or inferred.reference != self.gallery_source):
            return False
        self.markers = inferred
        self.markers_changed.emit()
        return True

    def set_counterfactual(self, shift: Shift | None) -> bool:
        """A counterfactual shift; refused (False) when its reference is not the open gallery."""
        if shift is not None and (self.gallery is None or shift.reference != self.gallery_source):
            return False
        self.counterfactual = shift
        self.counterfactual_changed.emit()
        return True

    def set_slide(self, heat: SlideHeat | None) -> bool:
        """A slide heatmap; refused (False) when another model embedded its tiles."""
        if heat is not None and (self.model is None or not self.is_current(heat.embedding.model_fingerprint)):
            return False
        self.slide = heat
        self.slide_changed.emit()
        return True

    def set_comparison(self, comparison: Comparison | None) -> bool:
        """A second model on the open gallery; refused (False) when made for another gallery, or with results
        for a query that is no longer the shown one."""
        if comparison is not None:
            if self.gallery is None or comparison.source != self.gallery_source:
                return False
            if comparison.results is not None and comparison.results.request != self.query:
                return False
        self.comparison = comparison
        self.comparison_changed.emit()
        return True

    def select_gallery(self, rows: Iterable[int]) -> None:
        """Select gallery rows (in the map, in the results): every view of the gallery shows the same selection."""
        n = len(self.index.rows) if self.index is not None else 0
        sel = frozenset(int(r) for r in rows if 0 <= int(r) < n)
        if sel != self.gallery_selection:
            self.gallery_selection = sel
            self.gallery_selection_changed.emit(sel)

    def set_results(self, result: SearchResult) -> bool:
        """Show a search's hits; refused (False) when the model or the gallery changed since it was asked."""
        if not self._is_for_open_gallery(result.model_fingerprint, result.gallery):
            return False
        self.report(result.failures)
        self.query, self.query_vector, self.results = result.request, result.query_vector, list(result.shown)
        self.results_below_threshold = not result.hits and bool(result.closest)
        self.results_changed.emit()
        return True

    # ---- dropped items -----------------------------------------------------------------------

    def add_result(self, result: EmbedResult) -> bool:
        """Append what a job embedded (also when it was cancelled part-way) and report its failures;
        False when it was embedded by another model than the open one."""
        if self.model is None or not self.is_current(result.model_fingerprint):
            return False
        if len(result.items):
            if result.vectors.shape[1] != self.model.embed_dim:
                raise ValueError(f"result has {result.vectors.shape[1]}-d vectors, model gives {self.model.embed_dim}-d")
            base = self.vectors if self.vectors.size else np.zeros((0, self.model.embed_dim), np.float32)
            self.vectors = np.concatenate([base, result.vectors.astype(np.float32)])
            self.items.extend(result.items)
            self.items_changed.emit()
        self.report(result.failures)
        return True

    def take_pending(self) -> list[Item]:
        """Items shown before a model change, handed once to the job that embeds them again."""
        pending, self.pending_items = self.pending_items, []
        return pending

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

    def remove_items(self, indices: Iterable[int]) -> None:
        """Drop some embedded inputs (e.g. what a cancelled drop left that is not wanted); the rest keep
        their vectors and order, and the selection is what remains of it."""
        drop = {i for i in indices if 0 <= i < len(self.items)}
        if not drop:
            return
        keep = [i for i in range(len(self.items)) if i not in drop]
        renumber = {old: new for new, old in enumerate(keep)}
        self.items = [self.items[i] for i in keep]
        self.vectors = self.vectors[keep] if len(self.vectors) else self.vectors
        self.selection = frozenset(renumber[i] for i in self.selection if i in renumber)
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
