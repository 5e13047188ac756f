"""Content sniffing: what a file really is, from its first bytes."""

from __future__ import annotations

from pathlib import Path

from cl_core.hashing import open_regular

# Kinds we recognise but refuse: they need external interpreters (EPS runs Ghostscript) or are not ours.
REFUSED_KINDS = {
    "eps": "EPS/PostScript is refused: decoding it runs Ghostscript",
    "pdf": "PDF is not an image, audio or text format Contrastive Lens decodes",
    "fits": "FITS is not supported",
    "zip": "archives (zip) are not opened; extract the files first",
    "pickle": "pickle files are never loaded as data",
    "svg": "SVG is not supported (vector images must be rasterised first)",
    "ico": "ICO is not an accepted image format",
}


# byte-order marks: UTF-16/32 text starts with bytes that look like an MP3 frame header, so they come first
TEXT_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe", b"\xfe\xff")


def sniff(path: Path, head: bytes | None = None) -> str:
    """Return a content kind such as 'png', 'wav', 'npy', 'text' or 'unknown'. A FIFO, device or socket is
    refused (OSError) without reading from it."""
    if head is None:
        with open_regular(path) as fh:
            head = fh.read(4096)
    if not head:
        return "empty"
    b = head
    if b.startswith(TEXT_BOMS):
        return "text"
    if b.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if b.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if b[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if b.startswith(b"BM") and len(b) > 14:
        return "bmp"
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        return "webp"
    if b[:4] == b"RIFF" and b[8:12] == b"WAVE":
        return "wav"
    if b[:4] in (b"RF64", b"BW64"):
        return "wav"
    if b[:4] == b"FORM" and b[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if b[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if b.startswith(b"fLaC"):
        return "flac"
    if b.startswith(b"OggS"):
        return "ogg"
    if b.startswith(b"ID3") or (len(b) > 1 and b[0] == 0xFF and (b[1] & 0xE0) == 0xE0 and (b[1] & 0x06) != 0):
        return "mp3"
    if b.startswith(b"\x93NUMPY"):
        return "npy"
    if b.startswith(b"%PDF"):
        return "pdf"
    if b.startswith(b"%!PS") or b.startswith(b"\xc5\xd0\xd3\xc6"):
        return "eps"
    if b.startswith(b"SIMPLE  ="):
        return "fits"
    if b.startswith(b"PK\x03\x04"):
        return "zip"
    if b[:1] == b"\x80" and len(b) > 1 and b[1] in range(2, 6):
        return "pickle"
    if b[:4] == b"\x00\x00\x01\x00":
        return "ico"
    if _looks_like_text(b):
        stripped = b.lstrip()
        if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in b[:1024]):
            return "svg"
        return "text"
    return "unknown"


def _looks_like_text(b: bytes) -> bool:
    if b"\x00" in b:
        return False
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sniffed block is still text
        return exc.start >= len(b) - 3
