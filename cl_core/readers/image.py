"""Image reader: Pillow with a format allow-list and a hard pixel limit (no decompression bombs)."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from cl_core.errors import ReaderError
from cl_core.modality import Item, Modality

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
MAX_SIDE = 4096  # larger pictures are scaled down while decoding: no model looks at more, memory stays bounded


def read_image(path: Path, max_pixels: int, max_side: int = MAX_SIDE) -> list[Item]:
    """Decode one image to RGB. Size is checked from the header before pixels are decoded; a picture with a
    side over `max_side` is decoded at a reduced scale (JPEG's DCT scaling via draft, else Image.reduce by a
    whole factor, a box filter), so a 9000 x 9000 PNG does not come back as 243 MB of pixels."""
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
                factor = -(-max(width, height) // max_side)  # ceil: the smallest whole factor that fits
                if factor > 1 and fmt == "JPEG":
                    im.draft("RGB", (width // factor, height // factor))
                im.load()
                picture = im.reduce(factor) if factor > 1 and max(im.size) > max_side else im
                rgb = ImageOps.exif_transpose(picture).convert("RGB")
    except ReaderError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ReaderError(src, f"image too large (decompression bomb guard): {exc}") from None
    except UnidentifiedImageError:
        raise ReaderError(src, "unsupported or corrupt image (accepted: " + ", ".join(ALLOWED_FORMATS) + ")") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, MemoryError, IndexError) as exc:
        raise ReaderError(src, f"corrupt image: {type(exc).__name__}: {exc}") from None
    return [Item(src, Modality.IMAGE, rgb, {"format": fmt, "size": (width, height)})]

