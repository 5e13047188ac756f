"""Paired evaluation, zero-shot classification, geometry diagnostics, and the index/search/eval/diagnose verbs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cl_core.analysis import diagnostics as dg
from cl_core.analysis.evaluation import paired_report, paired_vectors, zero_shot
from cl_core.cli import main
from cl_core.embed.gallery import GalleryEmbedding, Row
from cl_core.embed.sources import Gallery
from cl_core.modality import Modality
from media import make_gallery


def fake_embedding(vectors: dict[Modality, np.ndarray], labels: list[str] | None = None) -> GalleryEmbedding:
    rows, vecs = [], []
    for m, x in vectors.items():
        for i, v in enumerate(x):
            rows.append(Row(len(rows), f"s{i}", f"{m.value}{i}", m, labels[i] if labels else None))
            vecs.append(v)
    return GalleryEmbedding(Gallery("g", "g", []), "fp", rows, np.asarray(vecs, np.float32))


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_paired_report_counts_ranks_in_both_directions():
    rng = np.random.default_rng(0)
    a = unit(rng.standard_normal((20, 16)))
    b = unit(a + 0.9 * rng.standard_normal((20, 16)))  # noisy partners: some ranks above 1
    rep = paired_report(fake_embedding({Modality.IMAGE: a, Modality.TEXT: b}))
    assert set(rep) == {"image->text", "text->image"}
    for name, (q, g) in {"image->text": (a, b), "text->image": (b, a)}.items():
        ranks = [1 + sum(float(q[i] @ g[j]) > float(q[i] @ g[i]) for j in range(20)) for i in range(20)]
        assert 0 < rep[name]["R@1"] < 1
        for k in (1, 5, 10):
            assert rep[name][f"R@{k}"] == pytest.approx(np.mean([r <= k for r in ranks]))
        assert rep[name]["median_rank"] == np.median(ranks) and rep[name]["n"] == 20


def test_zero_shot_accuracy_and_confusion_from_label_prompts(native_model):
    from cl_core.analysis.evaluation import class_vectors

    labels = ["alpha", "beta", "gamma"]
    classes = class_vectors(native_model, labels, ("{}",))
    truth = [0, 1, 2, 0, 1, 2]
    images = classes[truth].copy()
    images[5] = classes[0]  # one 'gamma' item looks like 'alpha'
    emb = fake_embedding({Modality.IMAGE: images}, [labels[t] for t in truth])
    got = zero_shot(native_model, emb, ("{}",))["image"]
    assert got["accuracy"] == pytest.approx(5 / 6)
    assert got["labels"] == labels and got["confusion"] == [[2, 0, 0], [0, 2, 0], [1, 0, 1]]


def test_effective_rank_sees_dimensional_collapse():
    rng = np.random.default_rng(1)
    full = unit(rng.standard_normal((500, 32)))
    collapsed = unit(rng.standard_normal((500, 3)) @ rng.standard_normal((3, 32)))
    assert dg.effective_rank(full) > 25 and dg.effective_rank(collapsed) <= 3.01


def test_modality_gap_probe_and_centroid_distance():
    rng = np.random.default_rng(2)
    a = unit(rng.standard_normal((200, 16)))
    same = unit(rng.standard_normal((200, 16)))
    shifted = unit(rng.standard_normal((200, 16)) + 6.0 * np.eye(16)[0])
    mixed = dg.pair_diagnostics(fake_embedding({Modality.IMAGE: a, Modality.TEXT: same}),
                                {Modality.IMAGE: a, Modality.TEXT: same}, Modality.IMAGE, Modality.TEXT, 10, 0)
    gapped = dg.pair_diagnostics(fake_embedding({Modality.IMAGE: a, Modality.TEXT: shifted}),
                                 {Modality.IMAGE: a, Modality.TEXT: shifted}, Modality.IMAGE, Modality.TEXT, 10, 0)
    assert mixed["linear_probe_accuracy"] < 0.7 and gapped["linear_probe_accuracy"] > 0.95
    assert gapped["centroid_distance"] > 3 * mixed["centroid_distance"]


def test_hubness_skew_grows_with_a_hub_and_bias_counts_own_modality():
    rng = np.random.default_rng(3)
    q = unit(rng.standard_normal((300, 16)) + 1.5 * np.eye(16)[0])  # queries share a direction
    g = unit(rng.standard_normal((300, 16)))
    flat = dg.skewness(dg.k_occurrence(q, g, 5))
    g[0] = np.eye(16)[0]  # a gallery point along it is near every query: a hub
    hubbed = dg.k_occurrence(q, g, 5)
    assert dg.skewness(hubbed) > flat + 1 and hubbed[0] == hubbed.max()
    near_own = {Modality.IMAGE: q, Modality.TEXT: unit(g + 5.0 * np.eye(16)[1])}
    bias = dg.modality_bias(near_own)
    assert bias["text"]["own_modality_top1"] == 1.0 and bias["text"]["own_share_of_pool"] < 0.5


def test_hubs_are_named_by_gallery_row_within_and_across_modalities():
    rng = np.random.default_rng(5)
    texts = unit(rng.standard_normal((120, 16)) + 1.5 * np.eye(16)[0])
    images = unit(rng.standard_normal((150, 16)))
    images[37] = np.eye(16)[0]  # near every text: the across hub
    texts[11] = unit(texts.mean(axis=0))  # the centre of the texts: the within hub
    emb = fake_embedding({Modality.TEXT: texts, Modality.IMAGE: images})
    report = dg.diagnose(emb, k=5)
    within = report["per_modality"]["text"]["hubness_within"]
    assert within["hubs"][0][0] == 11 and emb.rows[11].modality is Modality.TEXT
    assert sum(within["histogram"]) == 120 and within["max_occurrence"] == within["hubs"][0][1]
    across = report["pairs"]["text|image"]["hubness text->image"]
    assert emb.rows[across["hubs"][0][0]].source == "image37"
    assert [n for _, n in across["hubs"]] == sorted((n for _, n in across["hubs"]), reverse=True)


def test_cosine_histograms_show_the_modality_gap_and_pairs():
    rng = np.random.default_rng(6)
    base = unit(rng.standard_normal((200, 16)))
    images = unit(base + 4.0 * np.eye(16)[0])
    texts = unit(base + 0.3 * unit(rng.standard_normal((200, 16))) - 4.0 * np.eye(16)[0] * 0 + 4.0 * np.eye(16)[1])
    got = dg.cosine_histograms(fake_embedding({Modality.IMAGE: images, Modality.TEXT: texts}),
                               {Modality.IMAGE: images, Modality.TEXT: texts}, 0)
    centres = (np.asarray(got["bins"][:-1]) + np.asarray(got["bins"][1:])) / 2

    def mean(key: str) -> float:
        counts = np.asarray(got[key])
        return float((centres * counts).sum() / counts.sum())

    assert sum(got["image"]) == 200 * 199 // 2 and sum(got["image|text"]) == 200 * 200
    assert sum(got["image|text paired"]) == 200
    assert mean("image") > mean("image|text") + 0.3  # within a modality closer than across it
    assert mean("image|text paired") > mean("image|text") + 0.05  # a sample's own text closer than others'


def test_effective_rank_as_given_counts_the_shared_mean():
    rng = np.random.default_rng(7)
    plane = np.linalg.qr(rng.standard_normal((16, 2)))[0].T  # two directions, orthogonal to ...
    plane -= np.outer(plane[:, 5], np.eye(16)[5])  # ... the shared offset's axis
    x = rng.standard_normal((400, 2)) @ plane + np.eye(16)[5]
    assert dg.effective_rank(x) <= 2.01  # the spread around the centroid is two-dimensional
    assert dg.effective_rank(x, centred=False) > 2.5  # as given, the offset is a third direction


def test_diagnosing_reports_progress_and_stops_when_cancelled():
    from cl_core.task import Cancelled, TaskState

    rng = np.random.default_rng(8)
    emb = fake_embedding({Modality.IMAGE: unit(rng.standard_normal((30, 8))),
                          Modality.TEXT: unit(rng.standard_normal((30, 8)))})
    seen: list[str] = []
    state = TaskState(on_progress=lambda p: seen.append(p.text))
    dg.diagnose(emb, k=3, state=state)
    assert seen[0] == "measuring image" and "measuring image against text" in seen and seen[-1] == "measured"
    stop = TaskState()
    stop.cancel()
    with pytest.raises(Cancelled):
        dg.diagnose(emb, k=3, state=stop)


def test_gallery_rows_map_to_the_rows_of_the_index_built_from_them():
    from cl_core.search.store import build_index_set, index_rows_of

    rng = np.random.default_rng(9)
    order = [Modality.TEXT, Modality.IMAGE, Modality.TEXT, Modality.AUDIO, Modality.IMAGE, Modality.TEXT]
    rows = [Row(i, f"s{i}", f"f{i}", m, None) for i, m in enumerate(order)]
    vectors = unit(rng.standard_normal((len(rows), 8)))
    index = build_index_set(rows, vectors, {"fingerprint": "fp"}, {"source": "g"}, kind="flat")
    where = index_rows_of(rows)
    assert [index.rows[where[i]].source for i in range(len(rows))] == [r.source for r in rows]
    assert np.allclose(np.asarray(index.vectors)[where], vectors)


def test_neighbour_agreement_is_high_for_matching_structure_and_low_for_none():
    rng = np.random.default_rng(4)
    a = unit(rng.standard_normal((100, 16)))
    by = {Modality.IMAGE: a, Modality.TEXT: a.copy()}
    agree = dg.pair_diagnostics(fake_embedding(by), by, Modality.IMAGE, Modality.TEXT, 5, 0)["neighbour_agreement"]
    rnd = {Modality.IMAGE: a, Modality.TEXT: unit(rng.standard_normal((100, 16)))}
    none = dg.pair_diagnostics(fake_embedding(rnd), rnd, Modality.IMAGE, Modality.TEXT, 5, 0)["neighbour_agreement"]
    assert agree["intra"] == 1.0 and none["intra"] < 0.2


def test_index_build_search_eval_and_diagnose_verbs(native_dir, tmp_path, capsys):
    folder = make_gallery(tmp_path / "g", n=8)
    cache = ["--cache", str(tmp_path / "cache"), "--quiet"]
    assert main(["index", "build", str(native_dir), str(folder / "manifest.csv"), "--out", str(tmp_path / "ix"),
                 "--json", *cache]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["count"] == 24 and {p["kind"] for p in built["parts"]} == {"flat"}
    assert all(p["recall_at_10"] == 1.0 for p in built["parts"])

    assert main(["search", str(tmp_path / "ix"), "--query", str(folder / "s3.png"), "--target-modality", "image",
                 "-k", "3", "--all", "--json", *cache]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits[0]["source"].endswith("s3.png") and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert [h["rank"] for h in hits] == [1, 2, 3] and hits[0]["relevance"] > max(h["relevance"] for h in hits[1:])

    assert main(["search", str(tmp_path / "ix"), "--text", "caption number 3", "--query", str(folder / "s3.wav"),
                 "--weight", "1", "--weight", "1", "-k", "2", "--all", "--json", *cache]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 2

    assert main(["eval", str(native_dir), str(folder / "manifest.csv"), "--json", *cache]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["retrieval"]) == {f"{a}->{b}" for a in ("image", "audio", "text")
                                        for b in ("image", "audio", "text") if a != b}
    assert report["zero_shot"]["image"]["labels"] == ["cat", "dog"]
    assert sum(map(sum, report["zero_shot"]["image"]["confusion"])) == 8

    assert main(["diagnose", str(native_dir), str(folder), "--json", "-k", "3", *cache]) == 0
    diag = json.loads(capsys.readouterr().out)
    assert diag["counts"] == {"image": 8, "audio": 8, "text": 8}  # the folder's manifest.csv gives 8 texts
    assert "image|audio" in diag["pairs"]


def test_search_refuses_an_index_of_another_model(native_dir, tmp_path, capsys):
    import tiny_models

    folder = make_gallery(tmp_path / "g", n=3)
    assert main(["index", "build", str(native_dir), str(folder), "--out", str(tmp_path / "ix"), "--quiet",
                 "--no-cache"]) == 0
    other = tiny_models.make_native(tmp_path / "other", seed=5)
    code = main(["search", str(tmp_path / "ix"), "--text", "x", "--model", str(other), "--quiet", "--no-cache"])
    assert code == 3 and "another model" in capsys.readouterr().err


def test_ranks_are_computed_a_block_at_a_time_and_agree_with_the_whole_matrix(monkeypatch):
    """Linear memory: a few queries at a time give exactly the ranks of the full score matrix."""
    import numpy as np

    from cl_core.analysis import metrics

    rng = np.random.default_rng(0)
    q = rng.standard_normal((257, 16)).astype(np.float32)
    g = q + 0.8 * rng.standard_normal((257, 16)).astype(np.float32)
    whole = metrics.ranks_from_scores(q @ g.T)
    monkeypatch.setattr(metrics, "BLOCK_SCORES", 257 * 7)  # seven queries per block, a last partial one
    np.testing.assert_array_equal(metrics.ranks(q, g), whole)
    assert whole.min() == 1 and whole.max() > 1


def test_neighbours_a_block_at_a_time_equal_the_whole_matrix(monkeypatch):
    """top_k in blocks (linear memory) finds the same neighbour sets as one full score matrix, with a row's
    own partner left out when asked."""
    import numpy as np

    from cl_core.analysis import diagnostics

    rng = np.random.default_rng(1)
    x = rng.standard_normal((203, 8)).astype(np.float32)
    full = x @ x.T
    np.fill_diagonal(full, -np.inf)
    expected = [set(np.argsort(-row)[:5].tolist()) for row in full]
    monkeypatch.setattr(diagnostics, "BLOCK_SCORES", 203 * 9)
    got = diagnostics.top_k(x, x, 5, skip_partner=True)
    assert [set(r.tolist()) for r in got] == expected
    assert all(i not in row for i, row in enumerate(got.tolist()))


def test_paired_report_reports_a_step_per_direction_and_stops_when_cancelled():
    from cl_core.task import Cancelled, TaskState

    rng = np.random.default_rng(10)
    emb = fake_embedding({Modality.IMAGE: unit(rng.standard_normal((20, 8))),
                          Modality.TEXT: unit(rng.standard_normal((20, 8)))})
    seen: list[str] = []
    paired_report(emb, state=TaskState(on_progress=lambda p: seen.append(p.text)))
    assert seen == ["ranking image -> text", "ranking text -> image"]
    stop = TaskState()
    stop.cancel()
    with pytest.raises(Cancelled):
        paired_report(emb, state=stop)


def test_paired_vectors_are_views_when_a_modality_is_one_run_of_rows():
    rng = np.random.default_rng(11)
    emb = fake_embedding({Modality.IMAGE: unit(rng.standard_normal((5, 4))),
                          Modality.TEXT: unit(rng.standard_normal((5, 4)))})
    qa, gb, shared = paired_vectors(emb, Modality.IMAGE, Modality.TEXT)
    assert np.shares_memory(qa, emb.vectors) and np.shares_memory(gb, emb.vectors) and len(shared) == 5
    np.testing.assert_array_equal(gb, emb.vectors[5:10])
    emb.rows = [emb.rows[i] for i in (0, 5, 1, 6, 2, 7, 3, 8, 4, 9)]  # interleaved: copies, still right
    emb.vectors = emb.vectors[[0, 5, 1, 6, 2, 7, 3, 8, 4, 9]]
    qa2, gb2, _ = paired_vectors(emb, Modality.IMAGE, Modality.TEXT)
    assert not np.shares_memory(qa2, emb.vectors)
    np.testing.assert_array_equal(qa2, qa)
    np.testing.assert_array_equal(gb2, gb)
