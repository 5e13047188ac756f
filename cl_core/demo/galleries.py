"""The bundled demos: trained models plus small galleries generated on first use.

Each gallery holds held-out cases never seen in training, is a pure function of its seed, and is written
once into the user's cache folder, atomically (a temp folder renamed into place).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf
import tifffile
from platformdirs import user_cache_dir

from cl_core.demo.worlds import shapes_sounds as ss
from cl_core.demo.worlds import tissue as ts
from cl_core.resources import RESOURCES

GALLERY_SEED = 20_000
MANIFEST = "manifest.csv"  # one row per sample: its files, text, label and ground truth


def _shapes_gallery(tmp: Path, count: int) -> None:
    """Distinct (colour, shape) pairs first (a readable demo), repeats once all 20 are used."""
    captions, manifest = _table(["id", "caption"]), _table(["id", "image", "audio", "caption", "label", "size", "texture",
                                                            "position"])
    seen: set[tuple[str, str]] = set()
    index = written = 0
    distinct = len(ss.COLOURS) * len(ss.SHAPES)
    while written < count:
        sample = ss.make_sample(GALLERY_SEED, index, compositional_fraction=0.0)
        index += 1
        obj = sample.objects[0]
        if (obj.colour, obj.shape) in seen and len(seen) < min(count, distinct):
            continue
        seen.add((obj.colour, obj.shape))
        stem = f"{written:02d}-{obj.colour}-{obj.shape}"
        written += 1
        sample.image.save(tmp / f"{stem}.png")
        sf.write(tmp / f"{stem}.wav", sample.audio, ss.RATE)
        captions[1].writerow([stem, sample.caption])
        manifest[1].writerow([stem, f"{stem}.png", f"{stem}.wav", sample.caption, f"{obj.colour} {obj.shape}",
                              obj.size, obj.texture, obj.position])
    (tmp / "captions.csv").write_text(captions[0].getvalue(), encoding="utf-8")
    (tmp / MANIFEST).write_text(manifest[0].getvalue(), encoding="utf-8")


def _table(header: list[str]) -> tuple[io.StringIO, Any]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    return buf, writer


def _tissue_gallery(tmp: Path, count: int) -> None:
    reports = _table(["id", "report"])
    manifest = _table(["id", "he", "mif", "report", "label", "stage", "age", "grade", "necrosis", "cd8", "pdl1",
                        "ki67", "responder"])
    for i in range(count):
        sample = ts.make_sample(GALLERY_SEED, i)
        case = sample.case
        stem = f"{i:02d}-{case.organ}-stage{case.stage}"
        sample.he.save(tmp / f"{stem}-HE.png")
        tifffile.imwrite(tmp / f"{stem}-mIF.ome.tif", sample.mif, ome=True,
                         metadata={"axes": "CYX", "Channel": {"Name": list(ts.CHANNELS)}})
        reports[1].writerow([stem, sample.text])
        manifest[1].writerow([stem, f"{stem}-HE.png", f"{stem}-mIF.ome.tif", sample.text, case.organ, case.stage,
                              case.age, case.grade, case.necrosis, f"{case.cd8:.3f}", f"{case.pdl1:.3f}", f"{case.ki67:.3f}", case.responder])
    (tmp / "reports.csv").write_text(reports[0].getvalue(), encoding="utf-8")
    (tmp / MANIFEST).write_text(manifest[0].getvalue(), encoding="utf-8")


@dataclass(frozen=True)
class Demo:
    name: str
    model: Path
    version: int
    write: Callable[[Path, int], None]
    patterns: tuple[str, ...]  # gallery file order: one block per modality in the similarity matrix
    count: int = 8


DEMOS = {
    "shapes_sounds": Demo("shapes_sounds", RESOURCES / "demo" / "shapes_sounds", 3, _shapes_gallery,
                          ("*.png", "*.wav", "captions.csv")),
    "tissue": Demo("tissue", RESOURCES / "demo" / "tissue", 4, _tissue_gallery,
                   ("*-HE.png", "*-mIF.ome.tif", "reports.csv"), count=6),
}
DEFAULT_DEMO = "shapes_sounds"
DEMO_MODEL = DEMOS[DEFAULT_DEMO].model


def demo_gallery_dir(name: str = DEFAULT_DEMO) -> Path:
    base = Path(os.environ.get("CLENS_CACHE_DIR") or user_cache_dir("contrastive-lens"))
    return base / "demo" / f"{name}-v{DEMOS[name].version}"


def gallery_files(folder: Path, name: str = DEFAULT_DEMO) -> list[Path]:
    return [p for pattern in DEMOS[name].patterns for p in sorted(folder.glob(pattern))]


SEARCH_GALLERY_COUNT = 300  # samples in the demo galleries opened for search and projection (`demo:NAME`)


def demo_manifest(name: str = DEFAULT_DEMO, count: int | None = None, folder: Path | None = None) -> Path:
    """A demo search gallery's manifest, written on first use (held-out samples, each in every modality)."""
    count = count or SEARCH_GALLERY_COUNT
    folder = folder or demo_gallery_dir(name).with_name(f"{demo_gallery_dir(name).name}-search{count}")
    files = ensure_demo_gallery(count, folder, name)
    return files[0].parent / MANIFEST


def ensure_demo_gallery(count: int | None = None, folder: Path | None = None, name: str = DEFAULT_DEMO) -> list[Path]:
    demo = DEMOS[name]
    target = folder or demo_gallery_dir(name)
    if target.is_dir() and gallery_files(target, name):
        return gallery_files(target, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".gallery-", dir=target.parent))
    demo.write(tmp, count or demo.count)
    try:
        os.replace(tmp, target)
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return gallery_files(target, name)
