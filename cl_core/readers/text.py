"""Text readers: a .txt file is one item; a CSV/TSV gives one item per row of its text column."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cl_core.errors import ReaderError
from cl_core.modality import Item, Modality

# a byte-order mark names the encoding (UTF-32 before UTF-16: its BOM starts with UTF-16's); else UTF-8
BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
TEXT_COLUMNS = ("text", "caption", "prompt", "query", "description", "report", "sentence")


def _decode(path: Path, max_bytes: int) -> str:
    src = str(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise ReaderError(src, f"text file too large: {size:,} bytes exceeds {max_bytes:,}")
    raw = path.read_bytes()
    encoding = next((enc for bom, enc in BOMS if raw.startswith(bom)), "utf-8")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ReaderError(src, f"not {encoding.upper()} text: {exc}") from None


def read_text(path: Path, max_bytes: int) -> list[Item]:
    text = _decode(path, max_bytes).strip()
    if not text:
        raise ReaderError(str(path), "text file is empty")
    return [Item(str(path), Modality.TEXT, text)]


def read_csv(path: Path, max_bytes: int) -> list[Item]:
    """One text item per row: the column named text/caption/prompt/..., or the only column."""
    src = str(path)
    raw = _decode(path, max_bytes)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        rows = list(csv.reader(io.StringIO(raw), delimiter=delimiter))
    except csv.Error as exc:
        raise ReaderError(src, f"malformed CSV: {exc}") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise ReaderError(src, "CSV file is empty")
    header = [h.strip().lower() for h in rows[0]]
    column = next((header.index(c) for c in TEXT_COLUMNS if c in header), None)
    if column is None:
        if len(header) != 1:
            raise ReaderError(src, "CSV has no text column (named one of: " + ", ".join(TEXT_COLUMNS) + ")")
        column, body, first_line = 0, rows, 1
    else:
        body, first_line = rows[1:], 2
    items = []
    for n, row in enumerate(body):
        if column < len(row) and row[column].strip():
            items.append(Item(f"{src}:{n + first_line}", Modality.TEXT, row[column].strip(), {"row": n + first_line}))
    if not items:
        raise ReaderError(src, "CSV has no non-empty text rows")
    return items
