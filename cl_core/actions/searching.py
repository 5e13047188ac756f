"""Search a gallery index with any mix of texts, files and already embedded items (fused when several)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from cl_core.choices import AUTO_FUSION, own_fusion
from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.items import Failure, embed_paths
from cl_core.errors import ClensError
from cl_core.models.base import BaseModel
from cl_core.models.fingerprint import fingerprint_of
from cl_core.models.open import open_checkpoint
from cl_core.objectives import fuse
from cl_core.search import store
from cl_core.search.build import gallery_key
from cl_core.search.query import Hit, SearchRequest, SearchResult
from cl_core.search.query import search as search_index
from cl_core.search.relevance import ANY
from cl_core.task import TaskState


def open_search_index(folder: str | Path, model: BaseModel | None = None, device: str | None = None,
                      allow_pickle: bool = False, cache: EmbeddingCache | None = None
                      ) -> tuple[BaseModel, store.IndexSet]:
    """An index folder with its model (the one recorded in its manifest unless given); another model's
    index is refused."""
    from cl_core.search.build import open_index

    if model is None:
        recorded = store.read_manifest(Path(folder))["model"]
        model = open_checkpoint(recorded["source"], device=device, allow_pickle=allow_pickle)
    return model, open_index(folder, model, cache)


def read_index(folder: str | Path) -> store.IndexSet:
    """An index folder without its model (enough to map or inspect it): checked against its manifest."""
    return store.load(folder)


def search(model: BaseModel, index: store.IndexSet, request: SearchRequest, state: TaskState | None = None,
           pool: DecodePool | None = None) -> SearchResult:
    """Embed the query's parts with `model`, fuse them, and rank the index's rows."""
    request.validate()
    state = state or TaskState()
    fp = fingerprint_of(model)
    parts: list[np.ndarray] = []
    sources: list[str] = []
    modalities: list[str] = []
    if request.vectors is not None and len(request.vectors):
        parts.append(np.atleast_2d(np.asarray(request.vectors, np.float32)))
        sources += list(request.vector_sources) or [f"item {i}" for i in range(len(parts[0]))]
        given = list(request.vector_modalities)
        modalities += given if len(given) == len(parts[0]) else [ANY]
    failures: list[Failure] = []
    if request.files or request.texts:
        got = embed_paths(model, list(request.files), list(request.texts), state=state, pool=pool)
        failures = got.failures
        if got.cancelled:
            state.check_cancelled()
        if failures:
            return SearchResult(request, [], sources, failures, fp, gallery_key(index))
        parts.append(got.vectors)
        sources += [it.source for it in got.items]
        modalities += [it.modality.value for it in got.items]
    queries = np.concatenate(parts)
    note = ""
    if request.fusion == AUTO_FUSION:
        fusion, note = own_fusion(model.objective, len(queries))
        request = replace(request, fusion=fusion)
    one = set(modalities)
    hits = search_index(index, queries, request.target, request.k, request.fusion, request.weights, request.min_z,
                        request.min_score, request.min_relevance, next(iter(one)) if len(one) == 1 else ANY)
    closest: list[Hit] = []
    if not hits and request.min_relevance is not None:  # "nothing relevant", and what came nearest all the same
        closest = search_index(index, queries, request.target, min(request.k, CLOSEST), request.fusion,
                               request.weights, None, None, None, next(iter(one)) if len(one) == 1 else ANY)
    weights = request.weights if request.weights is not None and len(request.weights) == len(queries) else None
    return SearchResult(request, hits, sources, failures, fp, gallery_key(index), fuse(queries, weights), closest,
                        note)


CLOSEST = 5  # hits shown below the threshold when none passes it


EXPORT_COLUMNS = ("rank", "source", "sample_id", "modality", "score", "relevance", "z", "label", "text")


def export_hits(hits: list[Hit], path: str | Path, query: list[str] | None = None) -> Path:
    """The result list as CSV or JSON (by the suffix): path, sample, modality, raw and calibrated score,
    label, text and the gallery's metadata columns; written atomically."""
    import csv
    import io
    import json

    from cl_core.atomic import write_text_atomic

    path = Path(path)
    rows = [{k: getattr(h, k) for k in EXPORT_COLUMNS} for h in hits]
    if path.suffix.lower() == ".json":
        for row, h in zip(rows, hits, strict=True):
            if h.meta:
                row["meta"] = h.meta
        write_text_atomic(path, json.dumps({"query": query or [], "hits": rows}, indent=2))
    elif path.suffix.lower() in (".csv", ".tsv"):
        extra = [c for c in dict.fromkeys(k for h in hits for k in h.meta) if c not in EXPORT_COLUMNS]
        for row, h in zip(rows, hits, strict=True):
            row.update({c: h.meta.get(c, "") for c in extra})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, [*EXPORT_COLUMNS, *extra],
                                delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(path, buf.getvalue())
    else:
        raise ClensError(f"{path}: export to .csv, .tsv or .json")
    return path
