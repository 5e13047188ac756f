"""Readers: chosen by content, every failure a per-file ReaderError with the file and the reason."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from cl_core.errors import ReaderError, UnsupportedInputError
from cl_core.modality import AudioClip, ChannelStack, Modality
from cl_core.readers import ReadLimits, read_path
from cl_core.readers.sniff import sniff


@pytest.mark.parametrize("name", ["red.png", "photo.jpg", "gray.gif", "plain_rgb.tif"])
def test_images_decode_to_rgb(media_dir, name):
    [item] = read_path(media_dir / name)
    assert item.modality is Modality.IMAGE
    assert item.data.mode == "RGB"
    assert item.source.endswith(name)


def test_reader_is_chosen_by_content_not_extension(media_dir):
    [item] = read_path(media_dir / "png_named.txt")
    assert item.modality is Modality.IMAGE and item.data.size == (20, 20)


@pytest.mark.parametrize("name, reason", [
    ("truncated.png", "corrupt"),
    ("garbage.jpg", "corrupt"),
    ("bomb.png", "too large"),
    ("fake.eps", "Ghostscript"),
    ("doc.pdf", "PDF"),
])
def test_bad_images_and_formats_fail_per_file(media_dir, name, reason):
    path = media_dir / name
    with pytest.raises(ReaderError) as exc:
        read_path(path)
    assert str(path) in str(exc.value)
    assert reason.lower() in exc.value.reason.lower()


def test_non_audio_file_named_wav(media_dir):
    """Sniffed as text, so it never reaches the audio decoder; asked for as audio it fails by name."""
    with pytest.raises(ReaderError) as exc:
        read_path(media_dir / "not_audio.wav", Modality.AUDIO)
    assert "not_audio.wav" in str(exc.value) and "not audio" in exc.value.reason


def test_bomb_is_refused_before_decoding(media_dir):
    with pytest.raises(ReaderError, match="too large"):
        read_path(media_dir / "bomb.png", limits=ReadLimits(max_image_pixels=10_000))


def test_refused_kinds_are_unsupported(media_dir):
    with pytest.raises(UnsupportedInputError):
        read_path(media_dir / "fake.eps")


def test_audio_mono_native_rate(media_dir):
    [wav] = read_path(media_dir / "tone.wav")
    clip: AudioClip = wav.data
    assert wav.modality is Modality.AUDIO and clip.sample_rate == 22050
    assert clip.waveform.dtype == np.float32 and clip.waveform.ndim == 1
    assert abs(clip.seconds - 1.5) < 1e-3
    [flac] = read_path(media_dir / "stereo.flac")
    assert flac.meta["channels"] == 2 and flac.data.waveform.ndim == 1
    [ogg] = read_path(media_dir / "long.ogg")
    assert abs(ogg.data.seconds - 3.3) < 0.05


def test_audio_length_limit(media_dir):
    with pytest.raises(ReaderError, match="too long"):
        read_path(media_dir / "tone.wav", limits=ReadLimits(max_audio_seconds=1.0))


def test_corrupt_audio_with_audio_header(tmp_path, media_dir):
    data = (media_dir / "tone.wav").read_bytes()
    bad = tmp_path / "cut.wav"
    bad.write_bytes(data[:30])  # RIFF header, then nothing
    with pytest.raises(ReaderError) as exc:
        read_path(bad)
    assert "cut.wav" in str(exc.value)


def test_text_and_csv(media_dir):
    [txt] = read_path(media_dir / "caption.txt")
    assert txt.modality is Modality.TEXT and txt.data == "a red circle next to a blue square"
    rows = read_path(media_dir / "prompts.csv")
    assert [r.data for r in rows] == ["a photo of a dog", "a photo of a cat"]
    assert rows[0].source.endswith("prompts.csv:2")
    with pytest.raises(ReaderError, match="empty"):
        read_path(media_dir / "empty.txt")


def test_non_utf8_text_is_unsupported(media_dir):
    with pytest.raises(ReaderError):
        read_path(media_dir / "latin1.txt")


def test_ome_tiff_channel_names_and_shape(media_dir):
    [item] = read_path(media_dir / "mif.ome.tif")
    stack: ChannelStack = item.data
    assert item.modality is Modality.MULTICHANNEL
    assert stack.pixels.shape == (6, 48, 48) and stack.pixels.dtype == np.float32
    assert stack.channel_names == ("DAPI", "panCK", "CD8", "CD68", "PD-L1", "Ki67")


def test_npy_stack_with_sidecar_names_and_pickle_refused(media_dir):
    [item] = read_path(media_dir / "stack.npy")
    assert item.data.channel_names == ("DAPI", "panCK", "CD8")
    with pytest.raises(ReaderError, match="pickle"):
        read_path(media_dir / "objects.npy")


def test_oversized_tiff_refused_without_decoding(media_dir, monkeypatch):
    def no_decode(*_a, **_k):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", no_decode)
    with pytest.raises(ReaderError, match="memory budget"):
        read_path(media_dir / "mif.ome.tif", limits=ReadLimits(max_stack_bytes=1000))


def test_oversized_pyramid_reads_a_level_that_fits(tmp_path):
    data = np.arange(4 * 64 * 64, dtype=np.uint16).reshape(4, 64, 64)
    path = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(data, subifds=1, metadata={"axes": "CYX", "Channel": {"Name": ["a", "b", "c", "d"]}})
        tif.write(data[:, ::2, ::2], subfiletype=1)
    full = 4 * 64 * 64 * 2
    [item] = read_path(path, limits=ReadLimits(max_stack_bytes=full // 2))
    assert item.data.pixels.shape == (4, 32, 32)
    assert any("pyramid level" in n for n in item.meta["notes"])
    assert item.data.channel_names == ("a", "b", "c", "d")


def test_missing_and_folder(tmp_path):
    with pytest.raises(ReaderError, match="not found"):
        read_path(tmp_path / "nope.png")
    with pytest.raises(ReaderError, match="folder"):
        read_path(tmp_path)


def test_sniff_kinds(media_dir):
    assert sniff(media_dir / "tone.wav") == "wav"
    assert sniff(media_dir / "stereo.flac") == "flac"
    assert sniff(media_dir / "mif.ome.tif") == "tiff"
    assert sniff(media_dir / "stack.npy") == "npy"


def test_reader_error_pickles_with_its_fields():
    import pickle

    err = pickle.loads(pickle.dumps(ReaderError("a.png", "corrupt image")))  # noqa: S301 - our own bytes
    assert (err.source, err.reason) == ("a.png", "corrupt image")


def test_long_stereo_audio_is_downmixed_block_by_block(tmp_path):
    """Memory while reading is the mono signal plus a block, not every channel at once and their mean."""
    import tracemalloc

    import soundfile as sf

    from cl_core.readers.audio import read_audio

    rate, seconds = 48000, 120
    stereo = (np.random.default_rng(0).standard_normal((rate * seconds, 2)) * 3000).astype(np.int16)
    sf.write(tmp_path / "long.wav", stereo, rate, subtype="PCM_16")
    expected = (stereo.astype(np.float32) / 32768).mean(axis=1)
    del stereo
    tracemalloc.start()
    item = read_audio(tmp_path / "long.wav", 3600)[0]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    mono_bytes = rate * seconds * 4
    assert peak < 1.3 * mono_bytes, f"peak {peak / 2**20:.0f} MB for {mono_bytes / 2**20:.0f} MB of mono"
    np.testing.assert_allclose(item.data.waveform, expected, atol=1e-6)
