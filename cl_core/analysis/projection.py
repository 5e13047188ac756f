"""Projections of a whole gallery to 2-D — PCA, UMAP, t-SNE, every point, no sampling — and new points
placed into a fitted map by that map's own transform (never by projecting again).

- pca: exact, from the covariance accumulated block by block (memory: one block and a D x D matrix), so
  1M x 512 runs in seconds without a centred copy of the vectors; a new point goes through the same linear map.
- umap: umap-learn on a neighbour graph found by faiss (`umap_knn`: no pynndescent compile per process);
  new points by `UMAP.transform`. Numba code that can be cached is kept on disk (NUMBA_CACHE_DIR under the
  user cache folder unless set).
- tsne: openTSNE (FFT-accelerated gradients from 10k points, linear in N; Barnes-Hut below); progress and cancel every 25 iterations; new points
  by `TSNEEmbedding.transform`, which optimises only the new points against the fixed map.
Vectors are L2-normalised, so Euclidean distances order pairs as cosine does.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cl_core.choices import PROJECTIONS
from cl_core.errors import Cancelled, ClensError
from cl_core.task import TaskState

BLOCK = 65_536
TINY = 16  # UMAP of this many points or fewer starts from a random layout
DEFAULTS: dict[str, dict[str, Any]] = {
    "pca": {},
    "umap": {"n_neighbors": 15, "min_dist": 0.1, "seed": 0},
    "tsne": {"perplexity": 30.0, "n_iter": 500, "seed": 0},
}
# name -> (type, lowest, highest)
RANGES: dict[str, tuple[type, float, float]] = {
    "n_neighbors": (int, 2, 200), "min_dist": (float, 0.0, 1.0), "seed": (int, 0, 2**31 - 1),
    "perplexity": (float, 2.0, 500.0), "n_iter": (int, 50, 5000),
}


def check_params(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The method's parameters with defaults filled in; an unknown name or a value out of range is refused."""
    if method not in PROJECTIONS:
        raise ClensError(f"unknown projection {method!r}; choose one of {', '.join(PROJECTIONS)}")
    out = dict(DEFAULTS[method])
    for name, value in (params or {}).items():
        if name not in out:
            known = ", ".join(out) or "none"
            raise ClensError(f"{method} has no parameter {name!r} (it takes: {known})")
        kind, low, high = RANGES[name]
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ClensError(f"{method} {name} must be a {kind.__name__} (got {value!r})") from None
        if not (isinstance(number, int) or math.isfinite(number)) or not low <= number <= high:
            raise ClensError(f"{method} {name} must be between {low:g} and {high:g} (got {value!r})")
        out[name] = number
    return out


@dataclass
class Projection:
    method: str
    params: dict[str, Any]
    coords: np.ndarray  # [N, 2] float32, one row per gallery row, in the gallery's order
    fitted: Any = field(repr=False, default=None)  # pca: (mean, components [2, D]); the umap/openTSNE model
    seconds: float = 0.0

    def place(self, vectors: np.ndarray) -> np.ndarray:
        """Where new (normalised) vectors land in this map: [M, 2]."""
        x = np.atleast_2d(np.asarray(vectors, np.float32))
        if self.method == "pca":
            mean, components = self.fitted
            return ((x - mean) @ components.T).astype(np.float32)
        if self.fitted is None:
            raise ClensError(f"this {self.method} map was loaded without its fitted model; project again to place "
                             "new points into it")
        if self.method == "umap":
            return np.asarray(self.fitted.transform(x), np.float32)
        return np.asarray(self.fitted.transform(x.astype(np.float64)), np.float32)


@dataclass
class Projected:
    """A map of a gallery's index, with what it was made for (the Session refuses a map of another one)."""

    projection: Projection
    model_fingerprint: str
    gallery: str  # the index's content key
    from_cache: bool = False

    @property
    def coords(self) -> np.ndarray:
        return self.projection.coords


def project(vectors: np.ndarray, method: str, params: dict[str, Any] | None = None,
            state: TaskState | None = None) -> Projection:
    """Fit `method` on every row of `vectors` ([N, D], may be memory-mapped)."""
    state = state or TaskState()
    params = check_params(method, params)
    n = len(vectors)
    if n < 3:
        raise ClensError(f"a projection needs at least 3 points (the gallery has {n})")
    start = time.perf_counter()
    if method == "pca":
        coords, fitted = _pca(vectors, state)
    elif method == "umap":
        coords, fitted = _umap(vectors, params, state)
    else:
        coords, fitted = _tsne(vectors, params, state)
    return Projection(method, params, coords, fitted, time.perf_counter() - start)


def _pca(vectors: np.ndarray, state: TaskState) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    n, d = vectors.shape
    total = np.zeros(d, np.float64)
    gram = np.zeros((d, d), np.float64)
    blocks = range(0, n, BLOCK)
    for i, s in enumerate(blocks):
        state.check_cancelled()
        x = np.asarray(vectors[s:s + BLOCK], np.float32)
        total += x.sum(axis=0, dtype=np.float64)
        gram += (x.T @ x).astype(np.float64)  # float32 GEMM per block, accumulated in float64
        state.set_progress(i + 1, 2 * len(blocks), "PCA: covariance")
    mean = total / n
    cov = gram / n - np.outer(mean, mean)
    values, vecs = np.linalg.eigh(cov)
    components = vecs[:, ::-1][:, :2].T  # [2, D], largest variance first
    signs = np.sign(components[np.arange(2), np.argmax(np.abs(components), axis=1)])
    components = (components * signs[:, None]).astype(np.float32)  # a fixed sign: the same map every time
    mean32 = mean.astype(np.float32)
    coords = np.empty((n, 2), np.float32)
    for i, s in enumerate(blocks):
        state.check_cancelled()
        coords[s:s + BLOCK] = (np.asarray(vectors[s:s + BLOCK], np.float32) - mean32) @ components.T
        state.set_progress(len(blocks) + i + 1, 2 * len(blocks), "PCA: projecting")
    return coords, (mean32, components)


def numba_cache_dir() -> str:
    """Where numba keeps UMAP's compiled code between runs (so only the very first run compiles)."""
    from platformdirs import user_cache_dir

    base = os.environ.get("CLENS_CACHE_DIR") or user_cache_dir("contrastive-lens")
    return os.path.join(base, "numba")


def _umap(vectors: np.ndarray, params: dict[str, Any], state: TaskState) -> tuple[np.ndarray, Any]:
    state.set_progress(0, 0, "UMAP: loading (compiles once, then cached)")
    import umap  # noqa: PLC0415 - heavy (numba); imported when a UMAP is asked for

    from cl_core.analysis.umap_knn import FaissNeighbours, knn_graph

    state.check_cancelled()
    x = np.asarray(vectors, np.float32)
    n_neighbors = min(params["n_neighbors"], len(x) - 1)
    indices, dists, _agreement = knn_graph(x, n_neighbors, state, seed=params["seed"])
    state.set_progress(0, 0, f"UMAP of {len(x):,} points")
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=params["min_dist"],
                        random_state=params["seed"], transform_seed=params["seed"], low_memory=True, n_jobs=1,
                        precomputed_knn=(indices, dists, FaissNeighbours(x)), force_approximation_algorithm=True,
                        init="spectral" if len(x) > TINY else "random")  # spectral fails on a handful of points
    with warnings.catch_warnings():  # "not an NNDescent object": FaissNeighbours serves transform in its place
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
        coords = reducer.fit_transform(x)
    state.check_cancelled()
    return np.asarray(coords, np.float32), reducer


# numba reads its cache folder when it is first imported (by umap, pynndescent or openTSNE): set it first
os.environ.setdefault("NUMBA_CACHE_DIR", numba_cache_dir())


def _tsne(vectors: np.ndarray, params: dict[str, Any], state: TaskState) -> tuple[np.ndarray, Any]:
    from openTSNE import TSNE

    x = np.asarray(vectors, np.float64)
    perplexity = min(params["perplexity"], (len(x) - 1) / 3)
    n_iter = params["n_iter"]
    exaggeration_iter = min(250, n_iter)
    total = exaggeration_iter + n_iter
    done = [0]

    def tick(iteration: int, _error: float, _embedding: Any) -> bool:
        done[0] += 25
        state.set_progress(min(done[0], total), total, "t-SNE: optimising")
        return state.cancel_requested  # True stops openTSNE's optimisation

    state.set_progress(0, total, "t-SNE: neighbours")
    tsne = TSNE(n_components=2, perplexity=perplexity, n_iter=n_iter, early_exaggeration_iter=exaggeration_iter,
                random_state=params["seed"], callbacks=tick, callbacks_every_iters=25, n_jobs=1,
                negative_gradient_method="auto", verbose=False)
    embedding = tsne.fit(x)
    if state.cancel_requested:
        raise Cancelled("t-SNE cancelled")
    return np.asarray(embedding, np.float32), embedding
