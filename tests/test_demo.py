"""The bundled demo: a deterministic gallery, and (once trained) a model that really retrieves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cl_core.demo.galleries import DEMO_MODEL, ensure_demo_gallery
from cl_core.demo.worlds import shapes_sounds as ss


def test_gallery_is_deterministic_and_complete(tmp_path):
    a = ensure_demo_gallery(folder=tmp_path / "a")
    b = ensure_demo_gallery(folder=tmp_path / "b")
    assert [p.name for p in a] == [p.name for p in b]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert sum(p.suffix == ".png" for p in a) == 8 and sum(p.suffix == ".wav" for p in a) == 8
    assert a[-1].name == "captions.csv"
    pairs = {tuple(p.stem.split("-")[1:]) for p in a if p.suffix == ".png"}
    assert len(pairs) == 8  # distinct colour/shape pairs
    assert ensure_demo_gallery(folder=tmp_path / "a") == a  # second call reuses it


def test_tissue_gallery_reads_back_with_channel_names(tmp_path):
    from cl_core.readers import read_path

    files = ensure_demo_gallery(folder=tmp_path / "t", name="tissue")
    assert [p.name.split("-")[-1] for p in files[:6]] == ["HE.png"] * 6
    stack = read_path(files[6])[0]
    assert stack.data.channel_names == ("DAPI", "panCK", "CD8", "CD68", "PD-L1", "Ki67")
    reports = read_path(files[-1])
    assert len(reports) == 6 and "stage" in reports[0].data.lower()


def test_world_follows_its_documented_mapping():
    rng = np.random.default_rng(0)
    obj = ss.Obj("circle", "red", "large", "plain", "left")
    wave = ss.sound(obj, 1.0, rng)
    spectrum = np.abs(np.fft.rfft(wave))
    peak = np.argmax(spectrum) * ss.RATE / len(wave)
    assert abs(peak - ss.PITCH["red"]) < 4  # colour -> pitch
    img = np.asarray(ss.render((obj,), rng)).astype(int)
    red = (img[..., 0] > 150) & (img[..., 1] < 100)
    ys, xs = np.nonzero(red)
    assert xs.mean() < 24  # position -> where it is drawn
    assert ss.make_sample(5, 3).caption == ss.make_sample(5, 3).caption
    # position -> the low hum (left 60 Hz); centre has none
    low = spectrum[: int(100 * len(wave) / ss.RATE)]
    assert abs(np.argmax(low) * ss.RATE / len(wave) - ss.HUM["left"]) < 3
    centre = ss.sound(ss.Obj("circle", "red", "large", "plain", "centre"), 1.0, rng)
    assert np.abs(np.fft.rfft(centre))[55:65].max() < 0.1 * spectrum[55:65].max()


@pytest.mark.skipif(not (DEMO_MODEL / "clens_config.json").is_file(), reason="demo model not trained yet")
def test_bundled_demo_model_card_meets_targets():
    card = json.loads((DEMO_MODEL / "model_card.json").read_text())
    single = card["heldout_metrics"]["single"]
    assert len(single) == 6
    for pair, metrics in single.items():
        assert metrics["R@5"] >= 0.9, pair


def test_bundled_tissue_card_meets_targets_and_compares_objectives():
    card = json.loads((DEMO_MODEL.parent / "tissue" / "model_card.json").read_text())
    pairs = card["heldout_metrics"]["all"]
    assert len(pairs) == 6 and next(iter(pairs.values()))["n"] >= 300
    for pair, metrics in pairs.items():
        assert metrics["R@10"] >= 0.7, pair
    comparison = card["objective_comparison"]
    assert {"info_nce", "symile", "gram"} <= set(comparison)
    assert all(len(c["cosine"]) == 6 and c["objective_score"] for c in comparison.values())


@pytest.mark.skipif(not (DEMO_MODEL / "clens_config.json").is_file(), reason="demo model not trained yet")
def test_bundled_demo_model_retrieves_free_phrasing(tmp_path):
    from cl_core.embed.items import embed_paths
    from cl_core.modality import Modality
    from cl_core.models.open import open_checkpoint

    model = open_checkpoint(DEMO_MODEL)
    files = ensure_demo_gallery(folder=tmp_path / "g")
    images = embed_paths(model, [f for f in files if f.suffix == ".png"])
    sounds = embed_paths(model, [f for f in files if f.suffix == ".wav"])
    captions = embed_paths(model, [files[-1]])
    assert len(images.items) == len(sounds.items) == len(captions.items) == 8
    # each gallery image's own sound and caption rank first among the 8
    for other in (sounds, captions):
        sims = images.vectors @ other.vectors.T
        assert (sims.argmax(axis=1) == np.arange(8)).mean() >= 0.75
    assert all(it.modality is Modality.IMAGE for it in images.items)
