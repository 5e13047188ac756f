"""Two models on one gallery: items matched by what they are (not by row), overlap@k, figures side by side,
and `clens compare`."""

from __future__ import annotations

import json

import pytest

import tiny_models
from cl_core import actions
from cl_core.cli import main
from cl_core.search.compare import overlap_at_k
from cl_core.search.query import Hit
from media import make_gallery


def hit(source: str, modality: str = "image", text: str | None = None, rank: int = 1) -> Hit:
    return Hit(rank, 0, 0.5, 0.0, 0.5, "s", source, modality, None, text)


def test_overlap_counts_the_same_items_whatever_their_rows():
    a = [hit("x.png"), hit("y.png"), hit("t.csv", "text", "a cat")]
    b = [hit("t.csv", "text", "a cat"), hit("z.png"), hit("x.png")]
    got = overlap_at_k(a, b, 3)
    assert got["shared"] == 2 and got["overlap"] == pytest.approx(2 / 3) and got["jaccard"] == pytest.approx(2 / 4)
    assert overlap_at_k(a, b, 1) == {"k": 1, "shared": 0, "overlap": 0.0, "jaccard": 0.0}
    assert overlap_at_k([hit("t.csv", "text", "a dog")], [hit("t.csv", "text", "a cat")], 5)["shared"] == 0
    assert overlap_at_k([], [], 5)["overlap"] is None


@pytest.fixture(scope="module")
def second_dir(tmp_path_factory):
    return tiny_models.make_native(tmp_path_factory.mktemp("second") / "native", seed=7)


def test_a_model_against_itself_agrees_and_against_another_differs(native_dir, second_dir, tmp_path):
    folder = make_gallery(tmp_path / "g", n=10)
    model = actions.open_model(native_dir).model
    other = actions.open_model(second_dir).model
    same = actions.compare(model, model, folder / "manifest.csv", ["caption number 3"], k=5)
    assert same.searches[0]["overlap"]["overlap"] == 1.0
    assert all(x == y for name, x, y, _ in same.figures if "probe" not in name)  # the same vectors: same figures
    differ = actions.compare(model, other, folder / "manifest.csv", ["caption number 3"], k=5)
    names = [name for name, *_ in differ.figures]
    assert "R@1 image → text" in names and "image ↔ text: modality gap" in names and "text: effective rank" in names
    assert any(x != y for _, x, y, _ in differ.figures)
    assert [h["rank"] for h in differ.searches[0]["second"]] == [1, 2, 3, 4, 5]


def test_clens_compare_prints_both_and_refuses_nothing_to_embed(capsys, native_dir, second_dir, tmp_path):
    folder = make_gallery(tmp_path / "g", n=6)
    assert main(["compare", str(native_dir), str(second_dir), str(folder / "manifest.csv"), "--text",
                 "caption number 1", "-k", "3", "--no-cache", "--quiet", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert len(got["models"]) == 2
    assert {f["figure"] for f in got["figures"]} >= {"R@1 text → image", "text: effective rank"}
    assert all("definition" in f for f in got["figures"])
    assert got["searches"][0]["overlap"]["k"] == 3 and len(got["searches"][0]["first"]) == 3
    assert main(["compare", str(native_dir), str(second_dir), str(folder / "manifest.csv"), "--text",
                 "caption number 1", "-k", "3", "--no-cache", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "first" in out and "second" in out and "overlap@3" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["compare", str(native_dir), str(second_dir), str(empty), "--no-cache", "--quiet"]) != 0
    assert "Traceback" not in capsys.readouterr().err


def test_rows_map_between_two_models_that_embedded_different_items():
    from cl_core.embed.gallery import Row
    from cl_core.modality import Modality
    from cl_core.search.compare import Comparison, row_map

    first = [Row(0, "s0", "a.png", Modality.IMAGE), Row(1, "s0", "a.wav", Modality.AUDIO),
             Row(2, "s0", "t.csv", Modality.TEXT, text="a cat"), Row(3, "s1", "b.png", Modality.IMAGE)]
    second = [Row(0, "s0", "a.png", Modality.IMAGE), Row(2, "s0", "t.csv", Modality.TEXT, text="a cat"),
              Row(3, "s1", "b.png", Modality.IMAGE)]  # no audio tower: the sound is missing
    assert row_map(first, first) is None
    got = row_map(first, second)
    # index rows are grouped by modality: first = a.png, b.png, t.csv, a.wav; second = a.png, b.png, t.csv
    assert got.tolist() == [0, 1, 2]
    c = Comparison.__new__(Comparison)
    c.to_first, c.embedding = got, type("E", (), {"rows": second})()
    assert c.first_row(2) == 2 and c.second_rows([3]) == [] and c.second_rows([1, 2]) == [1, 2]
