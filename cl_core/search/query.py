"""Any-to-any search over an index folder: one query item or a fused set of items of different modalities.

Scores:
- `mean`: cosine with the weighted mean of the query embeddings (renormalised).
- `symile`: the multilinear inner product of Symile (Saporta et al., 2024), sum_d q1_d * ... * qk_d * g_d,
  which is an inner product with the elementwise product of the queries, so every index kind serves it.
- `gram`: minus the volume of the parallelotope spanned by the query vectors and the candidate (GRAM,
  Cicchetti et al., 2025): sqrt(det G) with G their Gram matrix. Computed exactly over the target modality
  with a Schur complement: det G = det(A) * (1 - b^T A^-1 b), A = Q Q^T, b = Q g.

Each hit carries the raw score, its z among the query's scores over the target modality, and its relevance:
the probability that it is relevant, from the mapping the index fitted for this (query, target) modality
pair (see `relevance`). Modalities merge on relevance, one scale, and one threshold on it lets a search
answer "nothing relevant". An item identical to the query (cosine 1) is the query itself and ranks first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np

from cl_core.choices import AUTO_FUSION, FUSIONS
from cl_core.errors import ClensError, DimensionMismatchError, Failure
from cl_core.modality import Modality
from cl_core.objectives import fuse, fusion_scores, query_gram_volume, symile_vector
from cl_core.search import relevance as rel
from cl_core.search.rowtable import Record
from cl_core.search.store import IndexSet

GRAM_CHUNK = 65_536


@dataclass(frozen=True)
class Hit:
    rank: int
    row: int
    score: float  # cosine for one item / mean fusion; MIP for symile; minus volume for gram
    z: float  # standard deviations above this query's mean score over the target modality
    relevance: float  # probability that the hit is relevant (the index's mapping for this modality pair)
    sample_id: str
    source: str
    modality: str
    label: str | None
    text: str | None
    meta: dict[str, Any] = field(default_factory=dict)  # the gallery's other columns for this item
    basis: str = ""  # how `relevance` was had, in words (for a tooltip, a report)
    logit: float = field(default=0.0, repr=False)  # relevance before the sigmoid: ranks where it saturates

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
    vector_modalities: tuple[str, ...] = ()  # the modality of each given vector, when known
    target: Modality | None = None
    k: int = 10
    fusion: str = AUTO_FUSION  # "auto": the model's own (cl_core.objectives.own_fusion), resolved by the search
    weights: tuple[float, ...] | None = None
    min_z: float | None = None
    min_score: float | None = None
    min_relevance: float | None = None  # front ends pass DEFAULT_MIN_RELEVANCE unless asked for everything

    def validate(self) -> None:
        """Arguments checked before any work: a bad one is one clear message, not a traceback later."""
        if self.k < 1:
            raise ClensError(f"k must be at least 1 (got {self.k})")
        if self.fusion not in (*FUSIONS, AUTO_FUSION):
            raise ClensError(f"unknown fusion {self.fusion!r}; expected one of {', '.join((*FUSIONS, AUTO_FUSION))}")
        for name, value in (("min_z", self.min_z), ("min_score", self.min_score),
                            ("min_relevance", self.min_relevance)):
            if value is not None and not np.isfinite(value):
                raise ClensError(f"{name} must be a finite number (got {value})")
        if self.min_relevance is not None and not 0.0 <= self.min_relevance <= 1.0:
            raise ClensError(f"min_relevance is a probability, from 0 to 1 (got {self.min_relevance})")
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
    closest: list[Hit] = field(default_factory=list)  # when no hit passes the threshold: the best ones anyway
    fusion_note: str = ""  # how the query's items were combined, and why (when the model's own fusion was used)

    @property
    def shown(self) -> list[Hit]:
        """What a front end lists: the hits, or, when none passes the threshold, the closest ones (flagged)."""
        return self.hits or self.closest


def search(index: IndexSet, queries: np.ndarray, target: Modality | None = None, k: int = 10,
           fusion: str = "mean", weights: Sequence[float] | None = None, min_z: float | None = None,
           min_score: float | None = None, min_relevance: float | None = None,
           query_modality: str = rel.ANY) -> list[Hit]:
    """Top-k rows for the (fused) query; target None searches every modality and merges them by relevance.
    `query_modality`: the modality of the query's parts when they share one (its pair's mapping is used),
    else relevance.ANY."""
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
    found = [c for t in targets for c in _search_one(index, q, t, k, fusion, weights, query_modality)]
    if target is None:  # the query itself first, then one scale for every modality
        found.sort(key=_merged_order)
    else:
        found.sort(key=_score_order)
    kept = [c for c in found if (min_z is None or c.z >= min_z) and (min_score is None or c.score >= min_score)
            and (min_relevance is None or c.relevance >= min_relevance)][:k]
    records = index.records([c.row for c in kept])  # only the rows shown are read
    return [_hit(n + 1, c, rec) for n, (c, rec) in enumerate(zip(kept, records, strict=True))]


class _Candidate(NamedTuple):
    """One candidate before any is kept, in plain floats: a hit list is ten to a few hundred of them, where
    numpy's calls cost more than the arithmetic (each ~3-4 us here once faiss has filled the caches)."""

    row: int
    score: float
    z: float
    relevance: float
    logit: float
    basis: str


def _score_order(c: _Candidate) -> tuple[float, int]:
    return -c.score, c.row


def _merged_order(c: _Candidate) -> tuple[bool, float, float, int]:
    return c.score < IDENTICAL, -c.logit, -c.score, c.row


def _hit(rank: int, c: _Candidate, rec: Record) -> Hit:
    """A Hit with its fields written at once from the row's record (no Row made on the way): a frozen
    dataclass's own __init__ sets them one object.__setattr__ at a time (2.2 us a hit here, against 0.9),
    and a hit list is most of a search's Python."""
    hit = object.__new__(Hit)
    hit.__dict__.update(rank=rank, row=c.row, score=c.score, z=c.z, relevance=c.relevance, sample_id=rec[1],
                        source=rec[2], modality=rec[3], label=rec[4], text=rec[5], meta=rec[6], basis=c.basis,
                        logit=c.logit)
    return hit


IDENTICAL = 1.0 - 1e-5  # a cosine this close to 1 is the query's own item (for the mean of one item)


def _search_one(index: IndexSet, q: np.ndarray, target: Modality, k: int, fusion: str,
                weights: Sequence[float] | None, query_modality: str) -> list[_Candidate]:
    part = index.parts[target]
    n = part.end - part.start
    if fusion == "gram":
        scores, rows = _gram_topk(index, q, target, k)
    else:
        vec = fuse(q, weights) if fusion == "mean" else symile_vector(q)
        s, r = index.search_part(target, vec[None, :], k)
        scores, rows = s[0], r[0]
    fit = rel.mapping_for(index.relevance, query_modality, target.value)
    if fusion == "mean" and part.stats is not None:
        mu, sd = rel.query_stat(part.stats, vec)
    else:  # symile and gram scores are not on the cosine scale the mappings were fitted on
        fit = None
        calib = fusion_scores(fusion, q, np.asarray(index.vectors[part.calibration], np.float32), weights)
        mu, sd = float(calib.mean()), float(calib.std()) or 1e-6
    basis = fit.description if fit is not None else rel.fallback_description(n)
    if fusion != "mean":
        basis = f"{fusion} fusion, {basis}"
    out = []
    for score, row in zip(scores.tolist(), rows.tolist(), strict=True):
        if row < 0:  # fewer than k
            continue
        z = (score - mu) / sd
        logit = rel.logit_of(fit, score, z, n)
        out.append(_Candidate(row, score, z, rel.probability_of(logit), logit, basis))
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
