"""A hostile corpus, generated on demand (nothing large is committed): files and checkpoints a careless
tool hangs on, eats memory with, or crashes on. Each case is a `clens` command line with the limits it
must keep: wall time, peak resident memory of its whole process tree (decoder workers included), the
exit codes allowed, and text the one message must contain. `run_case` runs one under a sampler."""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MB = 1024 * 1024


@dataclass
class Case:
    name: str
    argv: list[str]
    exits: tuple[int, ...]
    says: tuple[str, ...] = ()  # each must appear in stderr
    seconds: float = 60.0  # a hang is any run longer than this
    rss_mb: float = 1500.0  # the process tree's peak resident memory
    stdin: str | None = None


@dataclass
class Outcome:
    code: int
    stderr: str
    seconds: float
    peak_mb: float
    samples: int = 0
    timed_out: bool = False
    notes: list[str] = field(default_factory=list)


def _tree_rss_mb(root: int) -> float:
    """Resident memory of `root` and every descendant, read from /proc (VmRSS, in kB)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            with open(f"/proc/{pid}/status") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total / 1024


def run_case(case: Case, env: dict[str, str] | None = None, interval: float = 0.05) -> Outcome:
    """Run the case's command, sampling its process tree's memory until it exits or its time is up."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "cl_core", *case.argv], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CLENS_DEVICE": "cpu", "HF_HUB_OFFLINE": "1", **(env or {})})
    peak, samples = [0.0], [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(proc.pid))
            samples[0] += 1
            stop.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timed_out = False
    try:
        _, err = proc.communicate(case.stdin, timeout=case.seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        _, err = proc.communicate()
    stop.set()
    sampler.join()
    return Outcome(proc.returncode, err, time.monotonic() - start, peak[0], samples[0], timed_out)


# ---- the corpus -----------------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, side: int) -> Path:
    """A grey PNG of side x side pixels that compresses to a few hundred kB: a decompression bomb."""
    raw = zlib.compressobj(9)
    row = b"\0" + b"\x80" * side
    body = b"".join(raw.compress(row) for _ in range(side)) + raw.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body)
                     + _png_chunk(b"IEND", b""))
    return path


def wav_claiming(path: Path, seconds: int) -> Path:
    """A WAV header claiming `seconds` of 48 kHz 16-bit stereo, with almost no data behind it."""
    rate, channels, bits = 48000, 2, 16
    size = rate * channels * (bits // 8) * seconds
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
                     + b"data" + struct.pack("<I", size) + b"\0" * 4096)
    return path


def zip_bomb_checkpoint(folder: Path) -> Path:
    """A torch-style zip whose .pkl member inflates to 512 MB, beside an HF-looking config."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["CLIPModel"], "model_type": "clip"}))
    with zipfile.ZipFile(folder / "pytorch_model.bin", "w", zipfile.ZIP_DEFLATED) as zf, \
            zf.open("archive/data.pkl", "w") as member:
        member.write(pickle.dumps({"a": 1})[:-1])
        chunk = b"\0" * MB
        for _ in range(512):
            member.write(chunk)
    return folder


def corpus(root: Path, model: Path) -> list[Case]:
    """Write the hostile inputs under `root`; the cases that open them with the checkpoint `model`."""
    root.mkdir(parents=True, exist_ok=True)
    out = str(root / "out.npy")
    fifo = root / "pipe.png"
    if not fifo.exists():
        os.mkfifo(fifo)
    bomb = bomb_png(root / "bomb.png", 30000)  # 900 Mpx
    big = bomb_png(root / "big.png", 9000)  # 81 Mpx: decoded at a reduced scale, not refused
    wav = wav_claiming(root / "long.wav", 2 * 3600)
    utf16 = root / "note.txt"
    utf16.write_bytes("a red circle".encode("utf-16"))
    word = root / "word.txt"
    word.write_text("a" * 200_000, encoding="utf-8")
    deep = root / "deep"
    deep.mkdir(exist_ok=True)
    (deep / "clens_config.json").write_text("[" * 100_000 + "]" * 100_000)
    wide = root / "wide"
    wide.mkdir(exist_ok=True)
    cfg = json.loads((model / "clens_config.json").read_text())
    cfg["towers"]["image"]["image_size"] = 200_000
    (wide / "clens_config.json").write_text(json.dumps(cfg))
    (wide / "model.safetensors").write_bytes((model / "model.safetensors").read_bytes())
    zb = zip_bomb_checkpoint(root / "zipbomb")
    gallery = root / "gallery"
    gallery.mkdir(exist_ok=True)
    (gallery / "manifest.csv").write_text(f"id,image,caption\na,{fifo},one\nb,/dev/zero,two\nc,../big.png,three\n")
    m = str(model)
    return [
        Case("a FIFO as an input", ["embed", m, str(fifo), "--out", out, "--quiet"], (3,), ("pipe.png", "FIFO")),
        Case("a 900-megapixel PNG bomb", ["embed", m, str(bomb), "--out", out, "--quiet"], (3,), ("bomb.png",)),
        Case("a 9000 x 9000 PNG", ["embed", m, str(big), "--out", out, "--quiet"], (0,), (), rss_mb=1500),
        # libsndfile counts the frames that are there, not those the header claims: a short clip, embedded
        Case("a WAV header claiming 2 hours", ["embed", m, str(wav), "--out", out, "--quiet"], (0,)),
        Case("UTF-16 text", ["embed", m, str(utf16), "--out", out, "--quiet"], (0,)),
        Case("one 200,000-character word", ["embed", m, str(word), "--out", out, "--quiet"], (0,)),
        Case("a config nested 100,000 deep", ["info", str(deep)], (3,), ("nested",)),
        Case("a config asking for 200,000-pixel images", ["info", str(wide)], (3,), ("image_size",)),
        Case("a zip-bomb pickle checkpoint", ["info", str(zb), "--allow-pickle"], (3,), ("pytorch_model.bin",)),
        Case("a manifest naming a FIFO, /dev/zero and ../", ["index", "build", m, str(gallery / "manifest.csv"),
                                                            "--out", str(root / "ix"), "--no-cache", "--quiet"],
             (1,), ("outside its folder",)),
        Case("NaN and zero arguments", ["search", str(root / "ix"), "--text", "x", "-k", "0"], (2,), ("k",)),
        Case("a NaN threshold", ["search", str(root / "ix"), "--text", "x", "--min-z", "nan"], (2,), ("finite",)),
    ]
