"""Two models on the same gallery and queries: each embeds the gallery (the cache serves what it already
embedded), their results for each query are compared by overlap@k, and what `eval` and `diagnose` measure is
put side by side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cl_core.actions.gallery import embed_source
from cl_core.actions.searching import search
from cl_core.analysis.diagnostics import DEFINITIONS
from cl_core.analysis.diagnostics import diagnose as measure_geometry
from cl_core.analysis.evaluation import paired_report
from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.gallery import GalleryEmbedding
from cl_core.errors import ClensError
from cl_core.models.base import BaseModel
from cl_core.search.build import index_embedding, reuse_or_build
from cl_core.search.compare import Comparison, overlap_at_k, row_map
from cl_core.search.query import Hit, SearchRequest
from cl_core.task import TaskState

Figure = tuple[str, float | None, float | None, str]  # name, first model's value, second's, what it is


def side_by_side(first: GalleryEmbedding, second: GalleryEmbedding, k: int = 10,
                 state: TaskState | None = None) -> list[Figure]:
    """Recall@1 per direction, modality gap and probe, alignment, effective rank and hubness of both models'
    embeddings of one gallery."""
    state = state or TaskState()
    state.set_progress(0, 2, "measuring both models")
    ra, rb = measure_geometry(first, k), measure_geometry(second, k)
    state.check_cancelled()
    pa, pb = paired_report(first), paired_report(second)
    state.set_progress(2, 2, "measured")
    out: list[Figure] = []
    for d in dict.fromkeys([*pa, *pb]):
        out.append((f"R@1 {d.replace('->', ' → ')}", pa.get(d, {}).get("R@1"), pb.get(d, {}).get("R@1"),
                    "share of queries whose own paired item ranks first"))
    for pair in dict.fromkeys([*ra.get("pairs", {}), *rb.get("pairs", {})]):
        a, b = ra.get("pairs", {}).get(pair, {}), rb.get("pairs", {}).get(pair, {})
        name = pair.replace("|", " ↔ ")
        for key, label in (("centroid_distance", "modality gap"), ("linear_probe_accuracy", "probe accuracy"),
                           ("alignment", "alignment")):
            out.append((f"{name}: {label}", a.get(key), b.get(key), DEFINITIONS[key]))
    for m in dict.fromkeys([*ra.get("per_modality", {}), *rb.get("per_modality", {})]):
        a, b = ra.get("per_modality", {}).get(m, {}), rb.get("per_modality", {}).get(m, {})
        out.append((f"{m}: effective rank", a.get("effective_rank"), b.get("effective_rank"),
                    DEFINITIONS["effective_rank"]))
        out.append((f"{m}: hubness within (skew)", a.get("hubness_within", {}).get("skewness"),
                    b.get("hubness_within", {}).get("skewness"), DEFINITIONS["hubness"]))
    return out


def _embedded(model: BaseModel, which: str, source: str | Path, cache: EmbeddingCache | None, state: TaskState,
              pool: DecodePool | None, allow_outside: bool) -> GalleryEmbedding:
    """The gallery as `model` embeds it; stopped when cancelled, refused when nothing could be embedded."""
    emb = embed_source(model, source, cache, state, pool, allow_outside)
    if emb.cancelled:
        state.check_cancelled()
    if not emb.rows:
        raise ClensError(f"{source}: the {which} model embedded none of the gallery's items")
    return emb


def open_comparison(model: BaseModel, source: str | Path, first: GalleryEmbedding,
                    cache: EmbeddingCache | None = None, state: TaskState | None = None,
                    pool: DecodePool | None = None, allow_outside: bool = False, kind: str = "auto",
                    fingerprint: str | None = None) -> Comparison:
    """A second model on the gallery `first` is the first model's embedding of: its embedding, its index (kept
    under the cache folder like the window's, else in memory) and the figures of both side by side."""
    state = state or TaskState()
    emb = _embedded(model, "second", source, cache, state, pool, allow_outside)
    if cache is not None:
        index = reuse_or_build(model, emb, cache.root, kind, state, cache)
        if [r.source for r in index.rows] == [r.source for r in emb.rows]:
            emb.vectors = index.vectors
    else:
        index = index_embedding(model, emb, kind, state)
    return Comparison(model, fingerprint or emb.model_fingerprint, emb, index, str(source),
                      side_by_side(first, emb, state=state), to_first=row_map(first.rows, emb.rows))


def compare_search(comparison: Comparison, request: SearchRequest, first: Sequence[Hit],
                   state: TaskState | None = None) -> Comparison:
    """The first model's query run through the second model; the comparison with its results and their
    overlap@k with the first model's hits (`first`)."""
    got = search(comparison.model, comparison.index, request, state)
    return replace(comparison, results=got, overlap=overlap_at_k(first, got.shown, request.k))


@dataclass
class Compared:
    """`clens compare`: both models' names, the figures side by side, and per query both hit lists with their
    overlap@k."""

    names: tuple[str, str]
    figures: list[Figure]
    searches: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"models": list(self.names),
                "figures": [{"figure": n, "first": a, "second": b, "definition": d} for n, a, b, d in self.figures],
                "searches": self.searches}


def compare(first: BaseModel, second: BaseModel, source: str | Path, texts: Sequence[str] = (), k: int = 10,
            cache: EmbeddingCache | None = None, state: TaskState | None = None, pool: DecodePool | None = None,
            allow_outside: bool = False) -> Compared:
    """Both models on one gallery: figures side by side, and each text searched through both (every hit up to
    k, searched exactly) with the overlap of the two lists."""
    if k < 1:
        raise ClensError(f"k must be at least 1 (got {k})")
    state = state or TaskState()
    emb = _embedded(first, "first", source, cache, state, pool, allow_outside)
    index = index_embedding(first, emb, "flat", state)
    comparison = open_comparison(second, source, emb, cache, state, pool, allow_outside,
                                 kind="flat")
    out = Compared((first.name, second.name), comparison.figures)
    for text in texts:
        request = SearchRequest(texts=(text,), k=k, min_relevance=None)
        a = search(first, index, request, state)
        b = compare_search(comparison, request, a.shown, state)
        assert b.results is not None
        out.searches.append({"query": text, "overlap": b.overlap,
                             "first": [h.to_dict() for h in a.shown], "second": [h.to_dict() for h in b.results.shown]})
    return out

