"""Zero-shot biomarker inference by retrieval: fused scores, softmax-weighted neighbours with bootstrap
intervals, per-marker Pearson r, and the ridge baseline."""

from __future__ import annotations

import numpy as np
import pytest

from cl_core.analysis import biomarkers as bm


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def world(n: int = 300, d: int = 16, seed: int = 0):
    """Reference mIF vectors whose first two directions carry two markers' values."""
    rng = np.random.default_rng(seed)
    targets = rng.standard_normal((n, 2))
    vectors = unit(np.concatenate([targets, 0.3 * rng.standard_normal((n, d - 2))], axis=1))
    return vectors.astype(np.float32), targets


def test_the_profile_comes_from_the_nearest_patches_weighted_by_softmax():
    ref, targets = world()
    he = ref[17]  # a patch whose nearest reference patch is itself
    got = bm.infer(ref, targets, he, None, ["A", "B"], scale=50.0, k=5)
    assert got.neighbours[0] == 17 and list(got.scores) == sorted(got.scores, reverse=True)
    assert got.weights.sum() == pytest.approx(1.0) and got.weights[0] == got.weights.max()
    np.testing.assert_allclose(got.value, got.weights @ targets[got.neighbours])
    assert np.all(got.low <= got.value + 1e-9) and np.all(got.value <= got.high + 1e-9)
    assert set(got.to_dict()["markers"]) == {"A", "B"} and len(got.to_dict()["neighbours"]) == 5


def test_text_moves_the_scores_by_its_weight_and_bad_weights_are_refused():
    ref, _ = world()
    he, text = ref[3], ref[40]
    np.testing.assert_allclose(bm.fused_scores(ref, he, text, 0.8), 0.8 * ref @ he + 0.2 * ref @ text, atol=1e-6)
    np.testing.assert_allclose(bm.fused_scores(ref, he, text, 1.0), ref @ he, atol=1e-6)
    for w in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            bm.infer(ref, np.zeros((len(ref), 1)), he, text, ["A"], 10.0, w=w)


def test_inferred_profiles_track_the_truth_and_a_constant_has_no_correlation():
    ref, targets = world(seed=1)
    queries, truth = world(n=80, seed=2)
    pred = np.stack([bm.infer(ref, targets, q, None, ["A", "B"], scale=30.0).value for q in queries])
    r = bm.pearson_per_marker(pred, truth)
    assert np.all(r > 0.8)
    assert np.isnan(bm.pearson_per_marker(np.zeros_like(truth), truth)).all()
    probe = bm.linear_probe(ref, targets, queries)
    assert np.all(bm.pearson_per_marker(probe, truth) > 0.8)


def test_targets_are_mean_intensities_z_scored_by_the_reference():
    stacks = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 2, 2)
    means = bm.mean_intensity(stacks)
    assert means.shape == (2, 3) and means[1, 0] == pytest.approx(stacks[1, 0].mean())
    z = bm.Standardiser.fit(means)
    np.testing.assert_allclose(z(means).mean(axis=0), 0.0, atol=1e-12)
    assert bm.Standardiser.fit(np.ones((4, 2))).sd.tolist() == [1.0, 1.0]  # a constant marker stays finite
