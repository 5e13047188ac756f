"""The bundled demo: the trained shapes & sounds model and a small gallery generated on first use.

The gallery (held-out objects never seen in training: images, their sounds, their captions) is a pure
function of its seed, written once into the user's cache folder, atomically (a temp folder renamed).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from pathlib import Path

import soundfile as sf
from platformdirs import user_cache_dir

from cl_core.paths import RESOURCES
from cl_core.worlds import shapes_sounds as ss

DEMO_MODEL = RESOURCES / "demo" / "shapes_sounds"
GALLERY_SEED = 20_000
GALLERY_VERSION = 2


def demo_gallery_dir() -> Path:
    base = Path(os.environ.get("CLENS_CACHE_DIR") or user_cache_dir("contrastive-lens"))
    return base / "demo" / f"shapes_sounds-v{GALLERY_VERSION}"


def gallery_files(folder: Path) -> list[Path]:
    """Images first, then sounds, then the captions file: the matrix then shows one block per modality."""
    return sorted(folder.glob("*.png")) + sorted(folder.glob("*.wav")) + [folder / "captions.csv"]


def ensure_demo_gallery(count: int = 8, folder: Path | None = None) -> list[Path]:
    target = folder or demo_gallery_dir()
    if (target / "captions.csv").is_file():
        return gallery_files(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".gallery-", dir=target.parent))
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["id", "caption"])
    seen: set[tuple[str, str]] = set()
    index = 0
    while len(seen) < count:  # distinct (colour, shape) pairs make a readable demo
        sample = ss.make_sample(GALLERY_SEED, index, compositional_fraction=0.0)
        index += 1
        obj = sample.objects[0]
        if (obj.colour, obj.shape) in seen:
            continue
        seen.add((obj.colour, obj.shape))
        stem = f"{len(seen) - 1:02d}-{obj.colour}-{obj.shape}"
        sample.image.save(tmp / f"{stem}.png")
        sf.write(tmp / f"{stem}.wav", sample.audio, ss.RATE)
        writer.writerow([stem, sample.caption])
    (tmp / "captions.csv").write_text(rows.getvalue(), encoding="utf-8")
    try:
        os.replace(tmp, target)
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return gallery_files(target)
