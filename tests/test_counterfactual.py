"""Counterfactual text edits: the shift of a case's inferred profiles when only the text changes — a two-level
bootstrap interval, a paired Wilcoxon test across patches with Holm's correction across markers; the world's
interventions and text edits the benchmark measures against; and `clens tissue counterfactual` on files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cl_core import actions
from cl_core.analysis import biomarkers as bm
from cl_core.analysis import counterfactual as cf
from cl_core.cli import main
from cl_core.demo.worlds import tissue as ts
from tests.test_tissue_infer import reference


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_holm_adjusts_step_down_and_keeps_the_order():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.5])
    got = cf.holm(p)
    np.testing.assert_allclose(got[[0, 2, 1, 4]], [0.04, 0.09, 0.09, 0.5])  # 4*0.01, 3*0.03, max(2*0.04, .09), 0.5
    assert np.isnan(got[3])


def test_wilcoxon_rejects_a_consistent_shift_and_not_zero_or_one_patch():
    rng = np.random.default_rng(0)
    d = np.stack([0.5 + 0.1 * rng.standard_normal(12), 0.1 * rng.standard_normal(12), np.zeros(12)], 1)
    p = cf.wilcoxon_p(d)
    assert p[0] < 0.001 and p[1] > 0.05 and p[2] == 1.0
    assert np.isnan(cf.wilcoxon_p(d[:1])).all()


def world(n: int = 400, d: int = 16, seed: int = 0):
    """Reference mIF vectors whose direction 0 carries marker A; marker B is noise (no direction carries it)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    vectors = unit(np.concatenate([a[:, None], 0.5 * rng.standard_normal((n, d - 1))], axis=1))
    return vectors.astype(np.float32), np.stack([a, rng.standard_normal(n)], 1)


def test_a_text_pointing_along_a_markers_direction_shifts_that_marker_only():
    ref, targets = world()
    rng = np.random.default_rng(1)
    he = unit(rng.standard_normal((10, 16))).astype(np.float32)
    neutral = unit(rng.standard_normal(16)).astype(np.float32)
    towards_a = unit(neutral + 2.0 * np.eye(16, dtype=np.float32)[0])
    got = cf.shift(ref, targets, he, neutral, towards_a, ["A", "B"], scale=30.0)
    assert got.original.shape == got.edited.shape == (10, 2)
    np.testing.assert_allclose(got.mean, (got.edited - got.original).mean(axis=0))
    assert got.mean[0] > 0.3 and got.significant[0] and got.low[0] > 0
    assert not got.significant[1] and got.low[1] <= 0 <= got.high[1]
    same = cf.shift(ref, targets, he, neutral, neutral, ["A", "B"], scale=30.0)  # no edit, no shift, nothing called
    assert np.all(same.mean == 0) and not same.significant.any() and np.all(same.p == 1.0)
    one = cf.shift(ref, targets, he[:1], neutral, towards_a, ["A", "B"], scale=30.0)
    assert one.interval_over == "neighbours" and np.isnan(one.p).all()
    out = got.to_dict()
    assert out["markers"]["A"]["significant"] and "not mechanisms" in out["caveat"]


def test_score_weighting_is_proportional_to_the_scores():
    ref, targets = world()
    got = bm.infer(ref, targets, ref[5], None, ["A", "B"], 30.0, k=50, weighting="score")
    np.testing.assert_allclose(got.weights, np.clip(got.scores, 0, None) / np.clip(got.scores, 0, None).sum())
    with pytest.raises(ValueError, match="weighting"):
        bm.infer(ref, targets, ref[5], None, ["A", "B"], 30.0, weighting="mean")


def test_an_intervention_changes_only_what_it_causes_and_edits_change_only_one_variable():
    base = ts.make_case(5, 0, 2, stage="II")
    late = ts.make_case(5, 0, 2, stage="IV")
    older = ts.make_case(5, 0, 2, stage="II", age=88)
    assert base[0].case.organ == late[0].case.organ and base[0].case.stage == "II" and late[0].case.stage == "IV"
    assert base[0].case == base[1].case and not np.array_equal(base[0].mif, base[1].mif)  # one patient, two patches
    assert all(np.array_equal(a.mif, b.mif) for a, b in zip(base, older, strict=True))  # age causes nothing seen
    assert older[0].case.age == 88 and "88" in older[0].text
    with pytest.raises(ValueError, match="no clinical variable"):
        ts.make_case(5, 0, 1, weight=3)
    text = base[0].text
    for variable, value in (("stage", "IV"), ("grade", 3 if base[0].case.grade != 3 else 1), ("age", 91),
                            ("organ", "breast" if base[0].case.organ != "breast" else "lung"),
                            ("responder", not base[0].case.responder)):
        edited = ts.edit_text(text, variable, value)
        assert edited != text, variable
        assert ts.edit_text(edited, variable, getattr(base[0].case, variable)) == text, variable  # and back
    assert ts.edit_text("x; non-responder to checkpoint inhibition.", "responder", False) == \
        "x; non-responder to checkpoint inhibition."


def test_clens_tissue_counterfactual_names_each_marker_its_shift_and_the_caveat(capsys, native_dir, tmp_path):
    ref = reference(tmp_path / "ref")
    case = tmp_path / "case"
    case.mkdir()
    rng = np.random.default_rng(3)
    for i in range(4):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(case / f"he{i}.png")
    (case / "broken.png").write_bytes(b"not a picture")
    text = "stage II breast carcinoma, dense CD8 infiltrate"
    assert main(["tissue", "counterfactual", str(native_dir), "--he", str(case), "--text", text,
                 "--replace", "stage II=stage IV", "--reference", str(ref), "-k", "5", "--no-cache", "--quiet",
                 "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert set(out["markers"]) == {"DAPI", "panCK", "CD8"} and len(out["patches"]) == 4
    assert out["edited_text"] == text.replace("stage II", "stage IV") and out["k"] == 5 and out["w_he"] == 0.6
    assert all(m["low"] <= m["shift"] + 1e-9 and m["shift"] <= m["high"] + 1e-9 for m in out["markers"].values())
    assert "broken.png" in captured.err and "not mechanisms" in out["caveat"]
    model = actions.open_model(native_dir).model
    got = actions.counterfactual(model, sorted(case.glob("he*.png")), ref, text, text.replace("II", "IV"), k=5)
    np.testing.assert_allclose(got.mean, [out["markers"][m]["shift"] for m in got.markers], atol=1e-4)
    assert main(["tissue", "counterfactual", str(native_dir), "--he", str(case), "--text", text,
                 "--replace", "stage III=stage IV", "--reference", str(ref), "--no-cache", "--quiet"]) != 0
    assert "'stage III' is not in the text" in capsys.readouterr().err
    assert main(["tissue", "counterfactual", str(native_dir), "--he", str(case), "--text", text, "--to", text,
                 "--reference", str(ref), "--no-cache", "--quiet"]) != 0
    assert "nothing to compare" in capsys.readouterr().err
