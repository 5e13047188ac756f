"""Any-to-any search over an index folder: one query item or a fused set of items of different modalities.

Scores:
- `mean`: cosine with the weighted mean of the query embeddings (renormalised).
- `symile`: the multilinear inner product of Symile (Saporta et al., 2024), sum_d q1_d * ... * qk_d * g_d,
  which is an inner product with the elementwise product of the queries, so every index kind serves it.
- `gram`: minus the volume of the parallelotope spanned by the query vectors and the candidate (GRAM,
  Cicchetti et al., 2025): sqrt(det G) with G their Gram matrix. Computed exactly over the target modality
  with a Schur complement: det G = det(A) * (1 - b^T A^-1 b), A = Q Q^T, b = Q g.
Each hit carries the raw score and a calibrated one: the z-score of that score against the same query's
scores over a fixed random sample of the target modality, and the sample's tail fraction above it. A
threshold on either lets a search answer "nothing relevant".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from cl_core.choices import FUSIONS
from cl_core.errors import ClensError, DimensionMismatchError, Failure
from cl_core.modality import Modality
from cl_core.objectives import fuse, fusion_scores, query_gram_volume, symile_vector
from cl_core.search.store import IndexSet

GRAM_CHUNK = 65_536


@dataclass(frozen=True)
class Hit:
    rank: int
    row: int
    score: float  # cosine for one item / mean fusion; MIP for symile; minus volume for gram
    z: float  # calibrated: standard deviations above this query's typical score in the target modality
    tail: float  # fraction of the calibration sample scoring at least this much
    sample_id: str
    source: str
    modality: str
    label: str | None
    text: str | None
    meta: dict[str, Any] = field(default_factory=dict)  # the gallery's other columns for this item

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SearchRequest:
    """A query's parts: texts and files to embed, and vectors already embedded (e.g. chosen inputs).
    `weights` follow the parts in the order vectors, files, texts."""

    texts: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    vectors: np.ndarray | None = field(default=None, compare=False)
    vector_sources: tuple[str, ...] = ()
    target: Modality | None = None
    k: int = 10
    fusion: str = "mean"
    weights: tuple[float, ...] | None = None
    min_z: float | None = None
    min_score: float | None = None

    def validate(self) -> None:
        """Arguments checked before any work: a bad one is one clear message, not a traceback later."""
        if self.k < 1:
            raise ClensError(f"k must be at least 1 (got {self.k})")
        if self.fusion not in FUSIONS:
            raise ClensError(f"unknown fusion {self.fusion!r}; expected one of {', '.join(FUSIONS)}")
        for name, value in (("min_z", self.min_z), ("min_score", self.min_score)):
            if value is not None and not np.isfinite(value):
                raise ClensError(f"{name} must be a finite number (got {value})")
        if self.weights is not None and not all(np.isfinite(w) for w in self.weights):
            raise ClensError("every query weight must be a finite number")
        if not self.texts and not self.files and (self.vectors is None or not len(self.vectors)):
            raise ClensError("the query is empty: give a text, a file or an item")


@dataclass
class SearchResult:
    request: SearchRequest
    hits: list[Hit]
    query_sources: list[str]  # the query's parts, in the order they were fused
    failures: list[Failure]  # parts that could not be embedded (then nothing is searched)
    model_fingerprint: str
    gallery: str  # the index's content key: what the hits' rows refer to
    query_vector: np.ndarray | None = field(default=None, compare=False)  # the parts' weighted mean (to draw it)


def search(index: IndexSet, queries: np.ndarray, target: Modality | None = None, k: int = 10,
           fusion: str = "mean", weights: Sequence[float] | None = None, min_z: float | None = None,
           min_score: float | None = None) -> list[Hit]:
    """Top-k rows for the (fused) query; target None searches every modality and merges by calibrated score."""
    if fusion not in FUSIONS:
        raise ClensError(f"unknown fusion {fusion!r}; expected one of {', '.join(FUSIONS)}")
    q = np.atleast_2d(np.asarray(queries, np.float32))
    if q.shape[1] != index.dim:
        raise DimensionMismatchError("the query", q.shape[1], f"the index {index.folder}", index.dim)
    if not np.all(np.isfinite(q)):
        raise ClensError("the query embedding has NaN or infinite values")
    if fusion != "mean" and len(q) < 2:
        raise ClensError(f"{fusion} fusion needs at least two query items (three modalities with the target)")
    targets = [target] if target is not None else list(index.parts)
    for t in targets:
        if t not in index.parts:
            have = ", ".join(m.value for m in index.parts)
            raise ClensError(f"the index has no {t.value} items (it has: {have})")
    hits: list[Hit] = []
    for t in targets:
        hits.extend(_search_one(index, q, t, k, fusion, weights))
    hits.sort(key=lambda h: (-h.z if target is None else -h.score, h.row))
    kept = [h for h in hits if (min_z is None or h.z >= min_z) and (min_score is None or h.score >= min_score)][:k]
    return [replace(h, rank=n + 1) for n, h in enumerate(kept)]


def _search_one(index: IndexSet, q: np.ndarray, target: Modality, k: int, fusion: str,
                weights: Sequence[float] | None) -> list[Hit]:
    part = index.parts[target]
    calib = np.asarray(index.vectors[part.calibration], np.float32)
    if fusion == "gram":
        scores, rows = _gram_topk(index, q, target, k)
    else:
        vec = fuse(q, weights) if fusion == "mean" else symile_vector(q)
        s, r = index.search_part(target, vec[None, :], k)
        scores, rows = s[0], r[0]
    calib_scores = fusion_scores(fusion, q, calib, weights)
    mu, sd = float(calib_scores.mean()), float(calib_scores.std()) or 1e-6
    out = []
    for score, row in zip(scores, rows, strict=True):
        if row < 0:
            continue
        meta = index.rows[int(row)]
        out.append(Hit(0, int(row), float(score), float((score - mu) / sd),
                       float((np.sum(calib_scores >= score - 1e-7) + 1) / (len(calib_scores) + 1)),
                       meta.sample_id, meta.source, meta.modality.value, meta.label, meta.text,
                       {name: values[int(row)] for name, values in index.meta.items()
                        if values[int(row)] not in (None, "")}))
    return out


def _gram_topk(index: IndexSet, q: np.ndarray, target: Modality, k: int) -> tuple[np.ndarray, np.ndarray]:
    part = index.parts[target]
    best_s = np.zeros(0)
    best_r = np.zeros(0, np.int64)
    for start in range(part.start, part.end, GRAM_CHUNK):
        end = min(start + GRAM_CHUNK, part.end)
        s = -query_gram_volume(q, np.asarray(index.vectors[start:end], np.float32))
        s_all = np.concatenate([best_s, s])
        r_all = np.concatenate([best_r, np.arange(start, end)])
        keep = np.argsort(-s_all, kind="stable")[:k]
        best_s, best_r = s_all[keep], r_all[keep]
    return best_s.astype(np.float32), best_r
