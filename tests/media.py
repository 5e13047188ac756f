"""Sample input files, good and bad, written with the real libraries (test helpers)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
import tifffile
from PIL import Image

CHANNELS = ["DAPI", "panCK", "CD8", "CD68", "PD-L1", "Ki67"]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, width: int = 50_000, height: int = 50_000) -> Path:
    """A few hundred bytes that claim width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))
    return path


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_media(d: Path) -> Path:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(d / "red.png")
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(d / "photo.jpg", quality=90)
    Image.fromarray(rng.integers(0, 255, (30, 30), dtype=np.uint8)).save(d / "gray.gif")
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(d / "png_named.txt", format="PNG")
    good = (d / "red.png").read_bytes()
    (d / "truncated.png").write_bytes(good[: len(good) // 2])
    (d / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 255, 300, dtype=np.uint8)))
    bomb_png(d / "bomb.png")
    (d / "fake.eps").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    (d / "doc.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n")
    (d / "not_audio.wav").write_bytes(b"this is not a wave file at all\n" * 4)
    sf.write(d / "tone.wav", tone(1.5, 22050), 22050)
    sf.write(d / "stereo.flac", np.stack([tone(0.8, 16000, 330), tone(0.8, 16000, 660)], axis=1), 16000)
    sf.write(d / "long.ogg", tone(3.3, 16000, 523), 16000, format="OGG", subtype="VORBIS")
    (d / "caption.txt").write_text("a red circle next to a blue square\n", encoding="utf-8")
    (d / "prompts.csv").write_text("id,caption\n1,a photo of a dog\n2,a photo of a cat\n3,\n", encoding="utf-8")
    (d / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (d / "empty.txt").write_bytes(b"")
    stack = rng.random((6, 48, 48), dtype=np.float32) * 1000
    tifffile.imwrite(d / "mif.ome.tif", stack.astype(np.uint16), ome=True,
                     metadata={"axes": "CYX", "Channel": {"Name": CHANNELS}})
    tifffile.imwrite(d / "plain_rgb.tif", rng.integers(0, 255, (24, 24, 3), dtype=np.uint8), photometric="rgb")
    np.save(d / "stack.npy", stack[:3])
    (d / "stack.npy.channels.txt").write_text("DAPI\npanCK\nCD8\n", encoding="utf-8")
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return d


def make_gallery(folder, n: int = 6, seed: int = 0):
    """n samples, each an image, a sound and a caption; a manifest.csv ties them by id."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = ["id,image,audio,caption,label,site,depth"]
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"s{i}.png")
        sf.write(folder / f"s{i}.wav", rng.standard_normal(4000).astype(np.float32) * 0.1, 8000)
        lines.append(f"s{i},s{i}.png,s{i}.wav,caption number {i},{'cat' if i % 2 else 'dog'},site{i % 3},{i * 0.5:.1f}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
