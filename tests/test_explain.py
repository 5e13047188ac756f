"""Explanations for any model that embeds, checked against the shapes world's ground truth (held-out
scenes), and `clens explain` from the command line."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cl_core.analysis import explain as ex
from cl_core.demo.galleries import DEMO_MODEL
from cl_core.demo.worlds import shapes_sounds as ss
from cl_core.errors import Cancelled
from cl_core.modality import AudioClip, Item, Modality
from cl_core.task import TaskState

pytestmark = pytest.mark.skipif(not (DEMO_MODEL / "clens_config.json").is_file(), reason="demo model not trained yet")

_spec = importlib.util.spec_from_file_location("bench_explain", Path(__file__).parents[1] / "benchmarks" / "bench_explain.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def model():
    from cl_core.models.open import open_checkpoint

    return open_checkpoint(DEMO_MODEL)


def test_the_map_points_at_the_named_object_and_the_curve_at_its_sound(model):
    points, moments = bench.scene_hits(model, 8)
    assert sum(points) >= 7 and all(moments), (points, moments)


def test_colour_and_shape_words_carry_a_caption(model):
    assert sum(bench.caption_hits(model, 10)) >= 8


def test_a_picture_larger_than_the_input_is_tiled_not_squashed(model):
    scene = ss.make_scene(3, objects=2, canvas=160)
    q = model.encode(Modality.TEXT, [Item("q", Modality.TEXT, "a circle")])[0]
    m = ex.explain_image(model, q, scene.image, refine=0)
    assert m.heat.shape == (160, 160) and max(m.window_sizes) == ex.input_size(model) == 64
    assert 0 <= m.peak[0] < 160 and 0 <= m.peak[1] < 160


def test_explaining_can_be_cancelled(model):
    state = TaskState()
    state.cancel()
    scene = ss.make_scene(1)
    with pytest.raises(Cancelled):
        ex.explain_image(model, np.ones(model.embed_dim, np.float32), scene.image, state)
    with pytest.raises(Cancelled):
        ex.explain_audio(model, np.ones(model.embed_dim, np.float32), AudioClip(scene.audio, ss.RATE), state)


def test_clens_explain_writes_the_map_and_its_picture(tmp_path, capsys):
    from PIL import Image

    from cl_core.cli import main

    scene = ss.make_scene(5, objects=2)
    scene.image.save(tmp_path / "scene.png")
    sf.write(tmp_path / "scene.wav", scene.audio, ss.RATE)
    o = scene.objects[0]
    query = f"a {o.colour} {o.shape}"
    code = main(["explain", str(DEMO_MODEL), str(tmp_path / "scene.png"), "--text", query, "--json",
                 "--png", str(tmp_path / "map.png"), "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["modality"] == "image" and out["query"] == [f"text:{query}"]
    assert math.dist(out["image"]["peak_xy"], scene.centres[0]) <= scene.radii[0]
    assert np.array(out["image"]["heat"]).shape == (128, 128)
    with Image.open(tmp_path / "map.png") as pic:
        assert pic.size[0] > 128 and pic.size[1] == 128  # the picture, then the colour bar
    assert main(["explain", str(DEMO_MODEL), str(tmp_path / "scene.wav"), "--text", query, "--quiet"]) == 0
    assert "best match at 0." in capsys.readouterr().out  # the first second holds the first object
    assert main(["explain", str(DEMO_MODEL), "--target-text", "a big red circle on the left", "--text", "red",
                 "--json", "--quiet"]) == 0
    words = json.loads(capsys.readouterr().out)["text"]["words"]
    assert [w["word"] for w in words] == ["a", "big", "red", "circle", "on", "the", "left"]


def test_bad_explain_arguments_are_one_message(tmp_path, capsys):
    from cl_core.cli import main

    assert main(["explain", str(DEMO_MODEL), "--text", "x"]) == 2
    assert "give one target" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code = main(["explain", str(DEMO_MODEL), str(tmp_path / "bad.png"), "--text", "x", "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "bad.png" in err and "Traceback" not in err


def test_a_large_picture_keeps_a_coarser_map_that_still_points_right(model, monkeypatch):
    monkeypatch.setattr(ex, "MAP_SIDE", 48)  # as a 4096-px picture against the real 1024 cells
    scene = ss.make_scene(4, objects=2, canvas=128)
    o = scene.objects[0]
    q = model.encode(Modality.TEXT, [Item("q", Modality.TEXT, f"a {o.colour} {o.shape}")])[0]
    m = ex.explain_image(model, q, scene.image)
    assert m.cell == 3 and m.heat.shape == (43, 43)
    assert math.dist(m.peak, scene.centres[0]) <= scene.radii[0] + m.cell


def test_a_long_text_is_explained_by_its_first_words(model, monkeypatch):
    monkeypatch.setattr(ex, "MAX_WORDS", 5)
    q = model.encode(Modality.TEXT, [Item("q", Modality.TEXT, "red")])[0]
    w = ex.explain_text(model, q, "a big red circle on the left of a small blue square")
    assert w.words == ["a", "big", "red", "circle", "on"] and len(w.importance) == 5


def test_the_spectrogram_is_bounded_for_a_long_sound():
    clip = AudioClip(np.random.default_rng(0).standard_normal(16000 * 600).astype(np.float32), 16000)
    spec = ex.spectrogram(clip)
    assert spec.shape[0] == 128 and spec.shape[1] <= 1024 and np.isfinite(spec).all()


def test_a_sound_shorter_than_two_windows_is_explained_by_silencing_its_parts(model):
    scene = ss.make_scene(6, objects=2)
    clip = AudioClip(scene.audio[: int(1.5 * ss.RATE)], ss.RATE)  # 1 s of the first object, 0.5 s of the second
    for k, (a, b) in enumerate(((0.0, 1.0), (1.0, 1.5))):
        o = scene.objects[k]
        q = model.encode(Modality.TEXT, [Item("q", Modality.TEXT, f"a {o.colour} {o.shape}")])[0]
        curve = ex.explain_audio(model, q, clip)
        assert curve.method == "silenced" and curve.window_s == pytest.approx(0.15, abs=0.01)
        assert a <= curve.peak_s < b, (k, curve.peak_s)
