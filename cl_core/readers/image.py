"""Image reader: Pillow with a format allow-list and a hard pixel limit (no decompression bombs)."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from cl_core.errors import ReaderError
from cl_core.modality import Item, Modality

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


def read_image(path: Path, max_pixels: int) -> list[Item]:
    """Decode one image to RGB. Size is checked from the header before pixels are decoded."""
    src = str(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=ALLOWED_FORMATS) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ReaderError(src, f"image too large: {width} x {height} pixels exceeds the limit of "
                                           f"{max_pixels:,} pixels")
                fmt = im.format
                im.seek(0)
                im.load()
                rgb = ImageOps.exif_transpose(im).convert("RGB")
    except ReaderError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ReaderError(src, f"image too large (decompression bomb guard): {exc}") from None
    except UnidentifiedImageError:
        raise ReaderError(src, "unsupported or corrupt image (accepted: " + ", ".join(ALLOWED_FORMATS) + ")") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, MemoryError, IndexError) as exc:
        raise ReaderError(src, f"corrupt image: {type(exc).__name__}: {exc}") from None
    return [Item(src, Modality.IMAGE, rgb, {"format": fmt, "size": (width, height)})]

