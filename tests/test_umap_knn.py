"""UMAP's neighbour graph from faiss: exact below the switch, close to exact above it, each row's own point
first (also when it has exact duplicates), and a refit giving the same map (the projection cache relies on it)."""

from __future__ import annotations

import numpy as np
import pytest

from cl_core.analysis import projection as pj
from cl_core.analysis import umap_knn
from cl_core.errors import Cancelled
from cl_core.task import TaskState


def unit(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, d))
    x = (centres[rng.integers(0, 8, n)] + 0.7 * rng.standard_normal((n, d))).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d2 = ((x[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1)
    order = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return order, np.sqrt(np.take_along_axis(d2, order, axis=1))


def test_small_galleries_get_the_exact_graph_with_each_point_first():
    x = unit(300)
    indices, dists, _ = umap_knn.knn_graph(x, 10, TaskState())
    ref_i, ref_d = exact(x, 10)
    assert (indices[:, 0] == np.arange(300)).all() and (dists[:, 0] == 0).all()
    np.testing.assert_allclose(dists, ref_d, atol=1e-3)
    agree = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(indices, ref_i, strict=True)])
    assert agree > 0.99  # equal up to ties between equally near points


def test_the_inverted_file_agrees_with_exact_search(monkeypatch):
    monkeypatch.setattr(umap_knn, "EXACT_BELOW", 100)
    x = unit(3000, d=24, seed=3)
    indices, dists, said = umap_knn.knn_graph(x, 15, TaskState())
    ref_i, _ = exact(x, 15)
    assert (indices[:, 0] == np.arange(3000)).all()
    assert np.all(np.diff(dists, axis=1) >= -1e-5)  # nearest first
    agree = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(indices, ref_i, strict=True)])
    assert agree > 0.95 and abs(said - agree) < 0.03  # what it measured on its sample holds on every row


def test_duplicated_points_still_list_themselves_first():
    x = unit(50)
    x[10] = x[11] = x[12]  # three identical rows: faiss may list any of them first
    indices, dists, _ = umap_knn.knn_graph(x, 5, TaskState())
    for i in (10, 11, 12):
        assert indices[i, 0] == i and dists[i, 0] == 0
        assert set(indices[i, 1:3]) == {10, 11, 12} - {i}


def test_the_graph_is_cancellable(monkeypatch):
    monkeypatch.setattr(umap_knn, "BLOCK", 10)
    state = TaskState(on_progress=lambda p: p.done >= 20 and state.cancel())
    with pytest.raises(Cancelled):
        umap_knn.knn_graph(unit(200), 5, state)


def test_a_umap_refit_gives_the_same_map_and_places_fitted_points_where_they_are():
    x = unit(400, seed=5)
    a, b = pj.project(x, "umap", {"n_neighbors": 10}), pj.project(x, "umap", {"n_neighbors": 10})
    np.testing.assert_array_equal(a.coords, b.coords)
    spread = float(np.ptp(a.coords, axis=0).max())
    placed = a.place(x[:20])  # a fitted point's neighbours are its own: it lands where it was drawn
    assert float(np.abs(placed - a.coords[:20]).max()) < 0.05 * spread


@pytest.mark.parametrize("n", [3, 4, 17])
def test_umap_of_a_handful_of_points_draws_them(n):
    got = pj.project(unit(n, seed=n), "umap")
    assert got.coords.shape == (n, 2) and np.all(np.isfinite(got.coords))
