"""Relevance a person can read: the per-modality-pair mapping from cosine to the probability of relevance,
fitted at index build from the gallery's pairs, and the goals on the shapes world (a labelled gallery of
single shapes with captions and sounds, held out from training)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cl_core.choices import DEFAULT_MIN_RELEVANCE
from cl_core.embed.gallery import Row
from cl_core.modality import Modality
from cl_core.search import relevance
from cl_core.search.query import search
from cl_core.search.store import IndexFileError, build_index_set, load, save

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def paired_gallery(n: int, seed: int, noise: float = 0.35, labels: list[str | None] | None = None):
    """n samples, each an image and a text whose vectors are noisy copies of one latent (a paired gallery)."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, DIM))
    img = unit(latent + noise * rng.standard_normal((n, DIM)))
    txt = unit(latent + noise * rng.standard_normal((n, DIM)))
    labels = labels or [None] * n
    rows = ([Row(i, f"s{i}", f"img{i}.png", Modality.IMAGE, labels[i]) for i in range(n)]
            + [Row(n + i, f"s{i}", f"t{i}", Modality.TEXT, labels[i], f"text {i}") for i in range(n)])
    return rows, np.vstack([img, txt]), latent


def build(rows, vectors):
    return build_index_set(rows, vectors, {"fingerprint": "fp", "name": "m"}, {"name": "g"}, "flat")


def test_logistic_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(-1, 1, 20_000), rng.normal(0, 2, 20_000)])
    truth = np.array([4.0, 1.5, -2.0])
    y = (rng.uniform(size=len(x)) < relevance.probability(x @ truth[:2] + truth[2])).astype(float)
    got = relevance._logistic(x, y, np.ones(len(x)), ridge=0.0)
    np.testing.assert_allclose(got, truth, atol=0.25)


def test_query_stats_equal_the_scores_mean_and_spread():
    rng = np.random.default_rng(1)
    g = unit(rng.standard_normal((3000, DIM)) + 0.5)
    q = unit(rng.standard_normal((4, DIM)))
    mu, sd = relevance.query_stats(relevance.target_stats(g, rng), q)
    scores = q @ g.T
    np.testing.assert_allclose(mu, scores.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(sd, scores.std(axis=1), rtol=1e-3)
    one = relevance.query_stat(relevance.target_stats(g, rng), q[0])  # a search's: one vector, plain floats
    np.testing.assert_allclose(one, (scores[0].mean(), scores[0].std()), rtol=1e-3)


@pytest.mark.parametrize("x", [-1e6, -700.0, -30.0, -1.0, 0.0, 2.5, 40.0, 1e6])
def test_one_logit_gives_the_sigmoid_bounded_at_the_extremes(x):
    assert relevance.probability_of(x) == pytest.approx(float(relevance.probability(x)), rel=1e-12)
    assert 0.0 < relevance.probability_of(x) <= 1.0


def test_pairs_give_a_probability_that_holds_on_held_out_queries():
    rows, vectors, latent = paired_gallery(1500, 2)
    s = build(rows, vectors)
    assert {("image", "text"), ("text", "image"), (relevance.ANY, "text")} <= set(s.relevance)
    assert s.relevance[("text", "image")].basis == "sample ids"
    rng = np.random.default_rng(3)  # held out: new texts of the gallery's own samples
    held = unit(latent[:400] + 0.35 * rng.standard_normal((400, DIM)))
    found, truth_hit = [], []
    for i, q in enumerate(held):
        hits = search(s, q[None], Modality.IMAGE, k=5, query_modality="text")
        found += [h.relevance for h in hits]
        truth_hit += [h.sample_id == f"s{i}" for h in hits]
    p, y = np.array(found), np.array(truth_hit, float)
    for lo, hi in ((0.0, 0.2), (0.2, 0.8), (0.8, 1.01)):  # reliability: predicted ~ observed in each band
        band = (p >= lo) & (p < hi)
        if band.sum() >= 30:
            assert abs(p[band].mean() - y[band].mean()) < 0.12, (lo, hi, p[band].mean(), y[band].mean())
    noise = unit(rng.standard_normal((20, DIM)))  # queries unrelated to anything: not relevant
    top = [search(s, q[None], Modality.IMAGE, k=1, query_modality="text")[0].relevance for q in noise]
    assert max(top) < DEFAULT_MIN_RELEVANCE


def test_modalities_merge_on_relevance_and_the_query_itself_ranks_first():
    rows, vectors, _ = paired_gallery(600, 4)
    s = build(rows, vectors)
    for t in range(600, 640):  # a text equal to a gallery text
        hits = search(s, vectors[t:t + 1], None, k=3, query_modality="text")
        assert hits[0].row == t and hits[0].modality == "text"
        assert hits[1].sample_id == rows[t].sample_id and hits[1].modality == "image"  # then its pair
        assert all(a.logit >= b.logit for a, b in zip(hits[1:], hits[2:], strict=False))


def test_coarse_labels_are_categories_not_matches():
    rows, vectors, _ = paired_gallery(600, 5, labels=[("a", "b", "c")[i % 3] for i in range(600)])
    assert build(rows, vectors).relevance[("text", "image")].basis == "sample ids"
    fine = [f"class{i % 40}" for i in range(600)]
    rows, vectors, _ = paired_gallery(600, 5, labels=fine)
    assert build(rows, vectors).relevance[("text", "text")].basis == "labels"


def test_without_pairs_the_fallback_is_named():
    rng = np.random.default_rng(6)
    x = unit(rng.standard_normal((500, DIM)))
    rows = [Row(i, f"s{i}", f"f{i}", Modality.IMAGE) for i in range(500)]
    s = build(rows, x)
    q = unit(rng.standard_normal((1, DIM)))
    hit = search(s, q, Modality.IMAGE, k=1)[0]
    assert "no relevant pairs" in hit.basis and hit.relevance < DEFAULT_MIN_RELEVANCE
    assert search(s, x[:1], Modality.IMAGE, k=1)[0].relevance > 0.99  # itself: far above chance


def test_mappings_survive_saving_and_a_forged_one_is_refused(tmp_path):
    rows, vectors, _ = paired_gallery(300, 7)
    s = build(rows, vectors)
    save(s, tmp_path / "ix")
    again = load(tmp_path / "ix")
    assert again.relevance == s.relevance
    q = vectors[310:311]
    assert [h.relevance for h in search(again, q, None, k=5, query_modality="text")] == \
        pytest.approx([h.relevance for h in search(s, q, None, k=5, query_modality="text")])
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    manifest["relevance"][0]["coef"] = [float("nan"), 1.0, 0.0]
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFileError, match="relevance mapping"):
        load(tmp_path / "ix")


@pytest.fixture(scope="module")
def shapes_index(tmp_path_factory):
    """The shapes world's search gallery (300 held-out samples: image, caption, sound; label = colour shape)
    indexed with the bundled demo model."""
    from cl_core import actions
    from cl_core.demo.galleries import DEMO_MODEL, demo_manifest

    if not (DEMO_MODEL / "clens_config.json").is_file():
        pytest.skip("demo model not trained yet")
    root = tmp_path_factory.mktemp("shapes")
    model = actions.open_model(DEMO_MODEL).model
    manifest = demo_manifest(folder=root / "gallery")
    built = actions.build_index(model, manifest, root / "index", cache=actions.EmbeddingCache(root / "cache"))
    return model, built.index


def test_a_caption_is_its_own_first_hit_in_any_modality_search(shapes_index):
    from cl_core import actions

    model, index = shapes_index
    captions = [i for i, r in enumerate(index.rows) if r.modality is Modality.TEXT]
    for i in captions[::5]:
        result = actions.search(model, index, actions.SearchRequest(texts=(index.rows[i].text,),
                                                                   min_relevance=DEFAULT_MIN_RELEVANCE))
        assert result.hits[0].text == index.rows[i].text and result.hits[0].modality == "text"


def test_label_queries_are_precise_and_find_half_with_default_settings(shapes_index):
    from cl_core import actions

    model, index = shapes_index
    labels = sorted({r.label for r in index.rows if r.label})
    precision, recall = [], []
    for label in labels:
        request = actions.SearchRequest(texts=(f"a {label}",), k=len(index.rows),
                                        min_relevance=DEFAULT_MIN_RELEVANCE)
        hits = actions.search(model, index, request).hits
        right = sum(h.label == label for h in hits)
        precision.append(right / len(hits) if hits else 1.0)
        recall.append(right / sum(r.label == label for r in index.rows))
    assert np.mean(precision) >= 0.8 and np.mean(recall) >= 0.5, (np.mean(precision), np.mean(recall))


def test_nothing_relevant_still_names_the_closest_items(shapes_index):
    from cl_core import actions

    model, index = shapes_index
    result = actions.search(model, index, actions.SearchRequest(texts=("a red circle",), k=8, min_relevance=1.0))
    assert result.hits == [] and 1 <= len(result.closest) <= 5
    assert [h.rank for h in result.closest] == list(range(1, len(result.closest) + 1))
    assert all(h.relevance < 1.0 for h in result.closest) and result.shown == result.closest
    everything = actions.search(model, index, actions.SearchRequest(texts=("a red circle",), k=8))
    assert everything.closest == [] and [h.row for h in everything.hits[:len(result.closest)]] == \
        [h.row for h in result.closest]
