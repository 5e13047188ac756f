"""Whole slides: the synthetic slide generator (pyramidal OME-TIFF H&E and mIF, region mask), lazy tiling that
reads a band of tiles at a time, tiles embedded through the cache (reopening and resuming cost nothing), glass
found and left out, the heatmap and `clens tissue heatmap`; a 13-band multispectral stack through the same path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from cl_core import actions
from cl_core.actions import slides
from cl_core.cli import main
from cl_core.demo.worlds import slide as sl
from cl_core.embed.cache import EmbeddingCache
from cl_core.errors import ClensError, ReaderError
from cl_core.readers import slide as reader
from cl_core.task import TaskState
from tests.tiny_models import make_native, native_config

SENTINEL2 = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")


@pytest.fixture(scope="module")
def small_slide(tmp_path_factory):
    return sl.make_slide(tmp_path_factory.mktemp("slide"), size=1024, seed=2, per_state=3)


def test_the_generator_writes_pyramidal_ome_tiffs_and_a_mask_with_every_state(small_slide):
    with tifffile.TiffFile(small_slide.mif) as tif:
        series = tif.series[0]
        assert tif.is_ome and series.axes == "CYX" and series.dtype == np.uint16
        assert [lv.shape for lv in series.levels] == [(6, 1024, 1024), (6, 512, 512)]
        assert "PD-L1" in tif.ome_metadata
    with tifffile.TiffFile(small_slide.he) as tif:
        assert tif.series[0].axes == "YXS" and tif.series[0].shape == (1024, 1024, 3)
    mask = np.load(small_slide.mask)
    assert mask.shape == (16, 16) and set(np.unique(mask)) == {0, 1, 2, 3, 4}
    meta = json.loads(small_slide.meta.read_text())
    assert meta["states"] == ["background", *sl.STATES] and meta["patch"] == 64
    level1 = tifffile.imread(small_slide.mif, level=1)
    full = tifffile.imread(small_slide.mif)
    # the pyramid level is the full level block-averaged (each patch shrunk the same way)
    np.testing.assert_allclose(level1.astype(float), full.reshape(6, 512, 2, 512, 2).mean(axis=(2, 4)), atol=1.0)


def test_tiling_reads_a_band_at_a_time_never_the_whole_level(small_slide, monkeypatch):
    slide = reader.Slide.open(small_slide.mif)
    assert slide.grid(64) == (16, 16) and slide.channel_names == tuple(sl.CHANNELS) and not slide.rgb
    reads: list[tuple[int, int]] = []
    real = reader.Slide._read

    def spy(self, arr, level, y0, y1, x0, x1):
        reads.append((y1 - y0, x1 - x0))
        return real(self, arr, level, y0, y1, x0, x1)

    monkeypatch.setattr(reader.Slide, "_read", spy)
    monkeypatch.setattr(reader, "BAND_BUDGET", 64 * 64 * 6 * 2 * 5)  # five tiles' worth of pixels at once
    full = tifffile.imread(small_slide.mif)
    for row, tiles in slide.bands(64, [3, 7]):
        assert tiles.shape == (16, 6, 64, 64)
        np.testing.assert_array_equal(tiles[9], full[:, row * 64:(row + 1) * 64, 9 * 64:10 * 64])
    assert reads and max(h * w for h, w in reads) <= 64 * 64 * 5 and len(reads) == 2 * 4  # 16 tiles in 4 pieces
    items = slide.items(tiles, 7, 64)
    assert items[2].source.endswith("@128,448") and items[2].data.channel_names == tuple(sl.CHANNELS)


def tiny_stack_model(folder, channels):
    cfg = native_config(stack_channels=tuple(channels))
    cfg["towers"]["multichannel"]["preprocess"]["size"] = 32
    cfg["towers"]["multichannel"]["preprocess"]["scale"] = "none"
    return actions.open_model(make_native(folder, config=cfg)).model


def test_tiles_are_embedded_through_the_cache_and_a_cancel_resumes(small_slide, tmp_path):
    model = tiny_stack_model(tmp_path / "m", sl.CHANNELS)
    cache = EmbeddingCache(tmp_path / "cache")
    state = TaskState()
    seen = []

    def stop_after_three(p):
        seen.append(p.done)
        if p.done >= 3:
            state.cancel()

    state = TaskState(on_progress=stop_after_three)
    part = slides.embed_slide(model, small_slide.mif, cache, state)
    assert part.cancelled and part.rows == part.cols == 32 and 3 <= part.done_rows < 32
    first = slides.embed_slide(model, small_slide.mif, cache)
    assert not first.cancelled and first.from_cache == part.done_rows and np.isfinite(first.vectors).all()
    again = slides.embed_slide(model, small_slide.mif, cache)
    assert again.from_cache == 32
    np.testing.assert_allclose(again.vectors, first.vectors, atol=1e-6)
    uncached = slides.embed_slide(model, small_slide.mif)
    np.testing.assert_allclose(uncached.vectors, first.vectors, atol=1e-5)


def test_glass_is_found_and_the_heatmap_ranks_tiles_like_their_query(small_slide, tmp_path, capsys):
    model = tiny_stack_model(tmp_path / "m", sl.CHANNELS)
    mask = np.load(small_slide.mask)
    glass = slides.background_tiles(reader.Slide.open(small_slide.mif), 64)
    np.testing.assert_array_equal(glass, mask == 0)
    np.testing.assert_array_equal(slides.background_tiles(reader.Slide.open(small_slide.he), 64), mask == 0)
    full = tifffile.imread(small_slide.mif)
    r, c = np.argwhere(mask == 2)[0]  # a necrotic tile, as a query file
    patch = tmp_path / "q.npy"
    np.save(patch, full[:, r * 64:(r + 1) * 64, c * 64:(c + 1) * 64])
    (tmp_path / "q.npy.channels.json").write_text(json.dumps(list(sl.CHANNELS)))
    heat = slides.slide_heatmap(model, small_slide.mif, files=[patch], patch=64)
    assert heat.scores.shape == (16, 16) and np.isnan(heat.shown[mask == 0]).all()
    assert heat.top(1)[0]["row"] == r and heat.top(1)[0]["col"] == c  # the tile itself first
    out = tmp_path / "heat.png"
    assert main(["tissue", "heatmap", str(model.source), str(small_slide.mif), "--query", str(patch), "--patch", "64",
                 "--png", str(out), "--scores", str(tmp_path / "s.npy"), "--no-cache", "--quiet", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["rows"] == 16 and got["background_tiles"] == int((mask == 0).sum()) and got["top"][0]["row"] == r
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), heat.scores, atol=1e-5)
    from PIL import Image

    assert Image.open(out).size[1] == 1024  # the full level (no smaller one within 2048 px) under the heat
    assert main(["tissue", "heatmap", str(model.source), str(small_slide.mif), "--no-cache", "--quiet"]) == 2
    assert "give a query" in capsys.readouterr().err


def test_a_13_band_multispectral_stack_goes_through_the_same_path(tmp_path):
    rng = np.random.default_rng(0)
    bands = rng.integers(0, 3000, (13, 256, 256)).astype(np.uint16)
    bands[:, 64:128, 128:192] += 9000  # a bright field: its tiles stand out
    path = tmp_path / "s2.ome.tif"
    tifffile.imwrite(path, bands, ome=True, tile=(128, 128),
                     metadata={"axes": "CYX", "Channel": {"Name": list(SENTINEL2)}})
    model = tiny_stack_model(tmp_path / "m", [b for b in SENTINEL2 if b != "B10"])  # a cirrus band it never read
    query = tmp_path / "field.npy"
    np.save(query, bands[:, 64:96, 128:160])
    (tmp_path / "field.npy.channels.json").write_text(json.dumps(list(SENTINEL2)))
    heat = slides.slide_heatmap(model, path, files=[query], skip_background=False)
    assert heat.embedding.patch == 32 and heat.scores.shape == (8, 8)
    assert heat.embedding.channel_notes == ["ignored (the model does not read them): B10"]
    assert heat.top(1)[0] == {**heat.top(1)[0], "row": 2, "col": 4}


def test_a_slide_without_a_pyramid_gets_its_overview_a_band_at_a_time(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (6, 1000, 900)).astype(np.uint16)
    path = tmp_path / "flat.ome.tif"
    tifffile.imwrite(path, pixels, tile=(128, 128), metadata={"axes": "CYX"})
    monkeypatch.setattr(reader, "BAND_BUDGET", 6 * 900 * 2 * 40)  # 40 rows at a time; the level is 25 times that
    slide = reader.Slide.open(path)
    reads: list[int] = []
    real = reader.Slide._read
    monkeypatch.setattr(reader.Slide, "_read", lambda self, arr, lv, y0, y1, x0, x1: (
        reads.append(y1 - y0), real(self, arr, lv, y0, y1, x0, x1))[1])
    small, factor = slide.overview(200)
    assert factor == 5 and small.shape == (6, 200, 180) and max(reads) <= 40
    np.testing.assert_array_equal(small, pixels[:, ::5, ::5])


def test_a_slide_stored_in_one_huge_piece_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "strip.tif"
    tifffile.imwrite(path, np.zeros((512, 512, 3), np.uint8), rowsperstrip=512)  # one strip: the whole image
    monkeypatch.setattr(reader, "BAND_BUDGET", 512 * 512 * 3 // 8)
    with pytest.raises(ReaderError, match="stored in pieces of .* save the slide tiled"):
        next(reader.Slide.open(path).bands(64))


def test_a_broken_slide_or_a_model_without_the_tower_is_one_message(tmp_path, small_slide):
    bad = tmp_path / "bad.ome.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(ReaderError, match="not a readable TIFF slide"):
        reader.Slide.open(bad)
    model = tiny_stack_model(tmp_path / "m", ("DAPI", "Vimentin"))
    with pytest.raises(ClensError, match="lacks channel"):
        slides.slide_heatmap(model, small_slide.mif, texts=["x"], patch=64)
