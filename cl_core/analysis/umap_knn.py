"""UMAP's k-nearest-neighbour graph found by faiss instead of pynndescent's NN-descent.

Why: pynndescent's numba code is mostly closures that numba cannot keep in its disk cache, so every new
process compiled it again (~20-30 s of a first 100k-point UMAP), and NN-descent itself ran single-threaded
under a fixed seed. faiss (already the app's index library) finds the same graph with BLAS on every core:
exactly below `EXACT_BELOW` points, above by an inverted file whose number of probed lists is raised until
its neighbours agree with exact search on `AGREEMENT` of them, measured on a sample of rows (NN-descent is
approximate too). Results do not depend on a random state: clustering
is seeded, so a refit gives the same graph and therefore (UMAP's seed fixed) the same map.

`FaissNeighbours` stands in for pynndescent's index in `UMAP.transform`, which only calls
`query(X, k, epsilon=...)` and reads `_angular_trees`: new points are placed by UMAP's own transform, with
their neighbours found exactly in the fitted points.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cl_core.task import TaskState

EXACT_BELOW = 20_000
PROBES = 8  # first nprobe tried
SAMPLE = 512
AGREEMENT = 0.97
BLOCK = 16_384


class FaissNeighbours:
    """Exact Euclidean neighbours among the fitted points, for `UMAP.transform` (which reads these names).
    Searches the fitted array itself (`faiss.knn`): no second copy of the vectors beside UMAP's own."""

    _angular_trees = False

    def __init__(self, x: np.ndarray) -> None:
        self.x = np.ascontiguousarray(x, np.float32)  # the caller's float32 array, not a copy

    def query(self, queries: np.ndarray, k: int, epsilon: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        squared, indices = faiss.knn(np.ascontiguousarray(queries, np.float32), self.x, k)
        return indices.astype(np.int32), np.sqrt(np.maximum(squared, 0)).astype(np.float32)


def knn_graph(x: np.ndarray, k: int, state: TaskState, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Each row's k nearest rows (itself first), their Euclidean distances ([N, k] int32, [N, k] float32), and
    the share of a sample's neighbours that exact search also finds (1.0 when the search was exact)."""
    import faiss

    faiss.cvar.distance_compute_blas_threshold = 20  # batched exact search through BLAS (as cl_core.search does)
    x = np.ascontiguousarray(x, np.float32)
    n, d = x.shape
    if n < EXACT_BELOW:
        index, agreement = faiss.IndexFlatL2(d), 1.0
        index.add(x)
    else:
        index, agreement = _inverted_file(x, k, state, seed)
    indices = np.empty((n, k), np.int32)
    dists = np.empty((n, k), np.float32)
    for s in range(0, n, BLOCK):
        state.check_cancelled()
        squared, found = index.search(x[s:s + BLOCK], k)
        indices[s:s + BLOCK] = found
        dists[s:s + BLOCK] = np.sqrt(np.maximum(squared, 0))
        state.set_progress(min(s + BLOCK, n), n, "UMAP: neighbours")
    dists[indices < 0] = np.inf  # fewer than k found in the probed lists: UMAP reads -1/inf as "no edge"
    _self_first(indices, dists)
    return indices, dists, agreement


def _inverted_file(x: np.ndarray, k: int, state: TaskState, seed: int) -> tuple[Any, float]:
    """An IVF index over `x` whose nprobe is doubled until it agrees with exact search on AGREEMENT of the
    neighbours of SAMPLE rows (measured here, on these vectors: clustered data needs few lists, diffuse more)."""
    import faiss

    n, d = x.shape
    nlist = int(4 * math.sqrt(n))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
    index.cp.seed = seed
    index.cp.niter = 10
    index.cp.min_points_per_centroid = 1  # trained on a sample: no warning on stderr
    rng = np.random.default_rng(seed)
    state.set_progress(0, 0, "UMAP: neighbours (clustering)")
    index.train(x[np.sort(rng.choice(n, size=min(n, nlist * 30), replace=False))])
    index.add(x)
    sample = x[np.sort(rng.choice(n, size=min(n, SAMPLE), replace=False))]
    exact = faiss.IndexFlatL2(d)
    exact.add(x)
    _, truth = exact.search(sample, k)
    del exact
    index.nprobe = PROBES
    while True:
        state.check_cancelled()
        _, found = index.search(sample, k)
        agree = np.mean([len(set(a) & set(b)) for a, b in zip(found, truth, strict=True)]) / k
        state.set_progress(0, 0, f"UMAP: neighbours (nprobe {index.nprobe}: {agree:.3f} of exact)")
        if agree >= AGREEMENT or index.nprobe >= nlist:
            return index, float(agree)
        index.nprobe = min(nlist, 2 * index.nprobe)


def _self_first(indices: np.ndarray, dists: np.ndarray) -> None:
    """UMAP expects each row's own point first at distance 0; duplicates of a point may have taken that place."""
    rows = np.arange(len(indices))
    wrong = indices[:, 0] != rows
    for i in np.flatnonzero(wrong):
        others = [j for j in indices[i] if j != i][: indices.shape[1] - 1]
        keep = [dists[i, list(indices[i]).index(j)] for j in others]
        indices[i] = [i, *others]
        dists[i] = [0.0, *keep]
    dists[:, 0] = 0.0
