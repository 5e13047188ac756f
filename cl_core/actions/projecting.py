"""Project a gallery's index to 2-D (PCA, UMAP, t-SNE; every row, cached on disk), and place new items into
the fitted map (`clens project`, the window's Projection panel)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cl_core.analysis import projection_cache
from cl_core.analysis.projection import Projected, check_params
from cl_core.analysis.projection import project as fit_projection
from cl_core.embed.items import embed_paths
from cl_core.errors import ClensError, Failure
from cl_core.models.base import BaseModel
from cl_core.search.build import gallery_key
from cl_core.search.store import IndexSet
from cl_core.task import TaskState


@dataclass
class Placed:
    sources: list[str]
    coords: np.ndarray  # [M, 2]
    failures: list[Failure]


def describe_projection(projected: Projected, index: IndexSet) -> dict[str, Any]:
    """What `clens project --json` and the map's .json say: the method, and which item each row is."""
    p = projected.projection
    return {"method": p.method, "params": p.params, "count": len(p.coords), "from_cache": projected.from_cache,
            "seconds": round(p.seconds, 3),
            "rows": [{"row": i, "sample": r.sample_id, "source": r.source, "modality": r.modality.value,
                      **({"label": r.label} if r.label else {}),
                      **_meta_of(index, i)} for i, r in enumerate(index.rows)]}


def _meta_of(index: IndexSet, row: int) -> dict[str, Any]:
    meta = index.meta_of(row)
    return {"meta": meta} if meta else {}


def projections_folder(cache_root: str | Path) -> Path:
    return Path(cache_root) / "projections"


def project(index: IndexSet, method: str = "pca", params: dict[str, Any] | None = None,
            cache_root: str | Path | None = None, state: TaskState | None = None,
            need_fitted: bool = False) -> Projected:
    """Every row of the index mapped by `method`; read from the cache folder when it was fitted before.
    `need_fitted`: a cached UMAP/t-SNE map is fitted again (same seed, same map) so new points can be placed."""
    params = check_params(method, params)
    key = projection_cache.projection_key(gallery_key(index), index.model_fingerprint, method, params)
    folder = projections_folder(cache_root) if cache_root is not None else None
    if folder is not None:
        found = projection_cache.load(folder, key, len(index.rows))
        if found is not None and (found.fitted is not None or not need_fitted):
            return Projected(found, index.model_fingerprint, gallery_key(index), True)
    fitted = fit_projection(index.vectors, method, params, state)
    if folder is not None:
        projection_cache.save(folder, key, fitted, len(index.rows))
    return Projected(fitted, index.model_fingerprint, gallery_key(index), False)


def place(model: BaseModel, projected: Projected, files: Sequence[str] = (), texts: Sequence[str] = (),
          vectors: np.ndarray | None = None, state: TaskState | None = None) -> Placed:
    """Embed files and texts with `model` (the map's model) and place them, and any given vectors, in the map."""
    from cl_core.models.fingerprint import fingerprint_of

    if fingerprint_of(model) != projected.model_fingerprint:
        raise ClensError("the model is not the one this map was made with; open the index's own model")
    parts, sources, failures = [], [], []
    if vectors is not None and len(vectors):
        parts.append(np.atleast_2d(np.asarray(vectors, np.float32)))
        sources += [f"vector {i}" for i in range(len(parts[0]))]
    if files or texts:
        got = embed_paths(model, list(files), list(texts), state=state)
        failures = got.failures
        if len(got.items):
            parts.append(got.vectors)
            sources += [it.source for it in got.items]
    coords = projected.projection.place(np.concatenate(parts)) if parts else np.zeros((0, 2), np.float32)
    return Placed(sources, coords, failures)
