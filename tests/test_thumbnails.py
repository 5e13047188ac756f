"""Thumbnails: composites pick the named channels, sounds become waveforms, pictures are cached by content."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cl_core import actions
from cl_core.modality import AudioClip, ChannelStack
from cl_core.readers.thumbnail import composite, default_channels, waveform_picture


def test_composite_shows_panck_cd8_dapi_as_red_green_blue():
    pixels = np.zeros((4, 8, 8), np.float32)
    pixels[1, :4] = 5.0  # panCK, top half
    pixels[3, :, :4] = 7.0  # DAPI, left half
    stack = ChannelStack(pixels, ("CD68", "panCK", "CD8", "DAPI"))
    assert default_channels(stack) == (1, 2, 3)
    rgb = composite(stack)
    assert rgb[0, 7, 0] == 255 and rgb[7, 7, 0] == 0  # red where panCK is
    assert rgb[7, 0, 2] == 255 and rgb[7, 7, 2] == 0  # blue where DAPI is
    assert default_channels(ChannelStack(pixels[:2], None)) == (0, 1, -1)


def test_waveform_is_louder_where_the_sound_is():
    wave = np.zeros(8000, np.float32)
    wave[4000:] = np.sin(np.linspace(0, 400, 4000))
    picture = waveform_picture(AudioClip(wave, 8000), 64)
    drawn = (picture != 245).any(axis=2).sum(axis=0)
    assert drawn[40:].min() > drawn[:20].max()


def test_thumbnails_are_cached_by_content(media_dir, tmp_path):
    cache = actions.EmbeddingCache(tmp_path / "cache")
    files = [media_dir / "red.png", media_dir / "tone.wav", media_dir / "truncated.png"]
    first = actions.thumbnails(files, cache, 64)
    assert Image.open(first[str(files[0])]).size[0] <= 64
    assert isinstance(first[str(files[2])], str)  # why there is none

    class NoPool:
        def calls(self, *args, **kwargs):  # noqa: ANN002, ANN003 - must not be reached
            raise AssertionError("drawn again")

    again = actions.thumbnails(files[:2], cache, 64, pool=NoPool())  # type: ignore[arg-type]
    assert again == {k: v for k, v in first.items() if k != str(files[2])}
    cache.close()


def test_thumbnails_are_handed_on_as_they_are_drawn(media_dir, tmp_path, monkeypatch):
    """Cached ones first, then each drawn batch, before the whole result: a long grid fills as it goes."""
    from cl_core.task import TaskState

    monkeypatch.setattr("cl_core.embed.thumbnails.PARTIAL_EVERY_S", 0.0)
    cache = actions.EmbeddingCache(tmp_path / "cache")
    files = [media_dir / "red.png", media_dir / "tone.wav", media_dir / "stack.npy"]
    actions.thumbnails(files[:1], cache, 64)  # one already on disk
    parts: list[dict] = []
    everything = actions.thumbnails(files, cache, 64, TaskState(on_partial=parts.append))
    assert parts[0] == {str(files[0]): everything[str(files[0])]}  # the cached one, before any drawing
    assert len(parts) == 3 and {k: v for p in parts for k, v in p.items()} == everything
    cache.close()
