"""Projections of every gallery row: PCA exact against scikit-learn, UMAP and openTSNE maps that place new
points where their neighbours are, a disk cache that refuses altered files, cancel, and clens project."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cl_core import actions
from cl_core.analysis import projection as pj
from cl_core.cli import main
from cl_core.errors import Cancelled, ClensError
from cl_core.task import TaskState
from media import make_gallery


def clusters(n_per: int = 60, d: int = 24, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 3
    x = np.concatenate([c + rng.standard_normal((n_per, d)) for c in centres]).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(k), n_per)


def test_pca_is_exact_blockwise_and_places_points_by_the_same_map(monkeypatch):
    from sklearn.decomposition import PCA

    x, _ = clusters()
    monkeypatch.setattr(pj, "BLOCK", 7)  # many blocks: the streamed covariance must equal the whole one
    got = pj.project(x, "pca")
    ref = PCA(2).fit_transform(x.astype(np.float64))
    for axis in range(2):  # equal up to the sign of each axis
        sign = np.sign(np.dot(got.coords[:, axis], ref[:, axis]))
        np.testing.assert_allclose(got.coords[:, axis] * sign, ref[:, axis], atol=1e-4)
    np.testing.assert_allclose(got.place(x[:5]), got.coords[:5], atol=1e-5)


@pytest.mark.parametrize("method,params", [("umap", {"n_neighbors": 10}), ("tsne", {"perplexity": 15})])
def test_nonlinear_maps_keep_clusters_and_place_new_points_among_their_neighbours(method, params):
    x, labels = clusters()
    got = pj.project(x, method, params)
    assert got.coords.shape == (len(x), 2) and np.all(np.isfinite(got.coords))
    centroids = np.stack([got.coords[labels == c].mean(axis=0) for c in range(4)])
    nearest = np.argmin(((got.coords[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() > 0.95  # the four clusters stay apart in the map
    rng = np.random.default_rng(1)
    new = x[::30] + 0.01 * rng.standard_normal(x[::30].shape).astype(np.float32)
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    placed = got.place(new)
    landed = np.argmin(((placed[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (landed == labels[::30]).all()  # each new point lands in its cluster


def test_tsne_is_deterministic_and_cancellable():
    x, _ = clusters(n_per=30)
    a, b = pj.project(x, "tsne", {"n_iter": 100}), pj.project(x, "tsne", {"n_iter": 100})
    np.testing.assert_array_equal(a.coords, b.coords)
    state = TaskState(on_progress=lambda p: p.done >= 50 and state.cancel())
    with pytest.raises(Cancelled):
        pj.project(x, "tsne", {"n_iter": 1000}, state)


@pytest.mark.parametrize("method,params,why", [
    ("mds", {}, "unknown projection"), ("umap", {"k": 3}, "no parameter"), ("umap", {"n_neighbors": 1}, "between"),
    ("tsne", {"perplexity": float("nan")}, "between"), ("tsne", {"n_iter": "many"}, "must be a int"),
])
def test_bad_parameters_are_refused(method, params, why):
    with pytest.raises(ClensError, match=why):
        pj.check_params(method, params)


def test_maps_are_cached_and_an_altered_file_is_fitted_again(native_model, tmp_path):
    built = actions.build_index(native_model, make_gallery(tmp_path / "g", n=8), tmp_path / "idx", "flat")
    assert built.index is not None
    first = actions.project(built.index, "pca", cache_root=tmp_path / "cache")
    again = actions.project(built.index, "pca", cache_root=tmp_path / "cache")
    assert not first.from_cache and again.from_cache
    np.testing.assert_array_equal(np.asarray(again.coords), first.coords)
    np.testing.assert_allclose(again.projection.place(np.asarray(built.index.vectors[:2])), first.coords[:2], atol=1e-5)
    coords_file = next((tmp_path / "cache" / "projections").glob("*.coords.npy"))
    blob = bytearray(coords_file.read_bytes())
    blob[-1] ^= 0xFF
    coords_file.write_bytes(bytes(blob))
    assert not actions.project(built.index, "pca", cache_root=tmp_path / "cache").from_cache


def test_clens_project_writes_the_map_and_places_a_text(capsys, native_dir, tmp_path):
    model = actions.open_model(native_dir).model
    built = actions.build_index(model, make_gallery(tmp_path / "g", n=8), tmp_path / "idx", "flat")
    assert built.index is not None
    direct = actions.project(built.index, "pca")
    code = main(["project", str(tmp_path / "idx"), "--out", str(tmp_path / "map.npy"), "--text", "caption number 2",
                 "--cache", str(tmp_path / "cache"), "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["count"] == len(built.index.rows)
    np.testing.assert_allclose(np.load(tmp_path / "map.npy"), direct.coords, atol=1e-5)
    rows = json.loads((tmp_path / "map.json").read_text())["rows"]
    assert [r["source"] for r in rows] == [r.source for r in built.index.rows]
    text_vec = actions.embed_inputs(model, texts=["caption number 2"]).vectors
    expected = direct.projection.place(text_vec)[0]
    assert [out["placed"][0]["x"], out["placed"][0]["y"]] == pytest.approx(expected.tolist(), abs=1e-4)
