"""Audio reader: soundfile (libsndfile) for wav/flac/ogg/mp3/aiff, downmixed to mono float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from cl_core.errors import ReaderError
from cl_core.modality import AudioClip, Item, Modality


def read_audio(path: Path, max_seconds: float) -> list[Item]:
    src = str(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise ReaderError(src, f"not a readable audio file: {exc}") from None
    if info.samplerate <= 0 or info.frames <= 0:
        raise ReaderError(src, "audio file holds no samples")
    seconds = info.frames / info.samplerate
    if seconds > max_seconds:
        raise ReaderError(src, f"audio too long: {seconds:.0f} s exceeds the limit of {max_seconds:.0f} s")
    try:
        mono, rate = _read_mono(path, info.frames)
    except (sf.LibsndfileError, RuntimeError, ValueError, MemoryError) as exc:
        raise ReaderError(src, f"corrupt audio: {exc}") from None
    if mono.size == 0:
        raise ReaderError(src, "audio file holds no samples")
    if not np.all(np.isfinite(mono)):
        raise ReaderError(src, "audio holds NaN or infinite samples")
    meta = {"sample_rate": int(rate), "channels": int(info.channels), "seconds": seconds, "format": info.format}
    return [Item(src, Modality.AUDIO, AudioClip(mono, int(rate)), meta)]


BLOCK_FRAMES = 1 << 16


def _read_mono(path: Path, frames: int) -> tuple[np.ndarray, int]:
    """Decoded block by block and downmixed into one mono float32 array: memory is the mono signal plus a
    block, not every channel at once and then their mean (a 3-hour 48 kHz stereo file: 2 GB, not 6)."""
    mono = np.empty(frames, np.float32)
    pos = 0
    with sf.SoundFile(str(path)) as fh:
        rate = int(fh.samplerate)
        for block in fh.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
            n = min(len(block), frames - pos)  # never past what the header counted
            if n <= 0:
                break
            mono[pos:pos + n] = block[:n].mean(axis=1)
            pos += n
    return mono[:pos], rate
