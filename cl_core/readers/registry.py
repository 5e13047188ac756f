"""The reader registry, declared as data: content kinds and extensions -> reader function.

`read_path` sniffs the file's first bytes, picks the reader, and turns every decoder failure into a
ReaderError naming the file and the reason, so a batch job can go on with the other files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from cl_core.errors import ReaderError, UnsupportedInputError
from cl_core.modality import Item, Modality
from cl_core.readers import audio, image, multichannel, text
from cl_core.readers.sniff import REFUSED_KINDS, sniff


@dataclass(frozen=True)
class ReadLimits:
    """Budgets checked before decoding, so hostile or huge files fail fast with a clear reason."""

    max_image_pixels: int = int(Image.MAX_IMAGE_PIXELS or 89_478_485)
    max_stack_bytes: int = 2 * 1024**3
    max_audio_seconds: float = 3 * 3600.0
    max_text_bytes: int = 16 * 1024**2


ReadFn = Callable[[Path, ReadLimits, "Modality | None"], list[Item]]


@dataclass(frozen=True)
class ReaderSpec:
    name: str
    modality: Modality | None  # None: decided by the file (TIFF may be an image or a channel stack)
    kinds: frozenset[str]
    read: ReadFn
    extensions: frozenset[str] = frozenset()  # when set, the extension must match too
    description: str = ""


READERS: tuple[ReaderSpec, ...] = (
    ReaderSpec("image", Modality.IMAGE, frozenset({"png", "jpeg", "gif", "bmp", "webp"}),
               lambda p, lim, _m: image.read_image(p, lim.max_image_pixels), description="Pillow, allow-listed formats"),
    ReaderSpec("tiff", None, frozenset({"tiff"}),
               lambda p, lim, m: multichannel.read_tiff(p, lim.max_stack_bytes, m is not Modality.MULTICHANNEL),
               description="tifffile / OME-TIFF, channel names from OME or ImageJ metadata"),
    ReaderSpec("npy", Modality.MULTICHANNEL, frozenset({"npy"}),
               lambda p, lim, _m: multichannel.read_npy(p, lim.max_stack_bytes), description="NumPy, no pickle"),
    ReaderSpec("audio", Modality.AUDIO, frozenset({"wav", "flac", "ogg", "mp3", "aiff"}),
               lambda p, lim, _m: audio.read_audio(p, lim.max_audio_seconds), description="soundfile (libsndfile)"),
    ReaderSpec("csv", Modality.TEXT, frozenset({"text"}), lambda p, lim, _m: text.read_csv(p, lim.max_text_bytes),
               extensions=frozenset({".csv", ".tsv"}), description="one text per row"),
    ReaderSpec("text", Modality.TEXT, frozenset({"text"}), lambda p, lim, _m: text.read_text(p, lim.max_text_bytes),
               description="UTF-8 text, one item per file"),
)


def reader_for(path: Path, kind: str) -> ReaderSpec | None:
    for spec in READERS:
        if kind in spec.kinds and (not spec.extensions or path.suffix.lower() in spec.extensions):
            return spec
    return None


def read_path(path: str | Path, modality: Modality | None = None, limits: ReadLimits | None = None) -> list[Item]:
    """Read one file into one or more Items; raise ReaderError (never anything else) on failure."""
    p = Path(path)
    src = str(p)
    limits = limits or ReadLimits()
    try:
        if not p.exists():
            raise ReaderError(src, "file not found")
        if p.is_dir():
            raise ReaderError(src, "is a folder, not a file")
        kind = sniff(p)
    except OSError as exc:
        raise ReaderError(src, f"cannot open: {exc.strerror or exc}") from None
    if kind == "empty":
        raise ReaderError(src, "file is empty")
    if kind in REFUSED_KINDS:
        raise UnsupportedInputError(src, f"unsupported: {REFUSED_KINDS[kind]}")
    spec = reader_for(p, kind)
    if spec is None:
        raise UnsupportedInputError(src, f"unsupported file content ({kind}); accepted: images, audio, "
                                         "TIFF/OME-TIFF and .npy channel stacks, UTF-8 text and CSV")
    if modality is not None and spec.modality is not None and spec.modality is not modality:
        if not (modality is Modality.MULTICHANNEL and spec.modality is Modality.IMAGE):
            raise ReaderError(src, f"is {spec.modality.value} content, not {modality.value}")
    try:
        items = spec.read(p, limits, modality)
    except ReaderError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is this file's error, never the job's
        raise ReaderError(src, f"{spec.name} reader failed: {type(exc).__name__}: {exc}") from None
    if modality is Modality.MULTICHANNEL:
        items = [multichannel.image_to_stack(it) if it.modality is Modality.IMAGE else it for it in items]
    return items
