"""Gallery sources: a folder, a CSV/Parquet manifest, or a bundled demo, as one list of entries.

An entry is one file or one text. Entries sharing a sample id are the same sample seen in several
modalities (that is what paired evaluation and fused queries use).

Manifest columns (names are case-insensitive):
- `id` / `sample_id` / `sample`: the sample; rows sharing it are one sample. Default: the row number.
- file columns, paths relative to the manifest: `path` / `file` / `filepath` / `filename` (modality from the
  file's content, or from a `modality` column), or one column per modality (`image`, `he`, `audio`, `sound`,
  `multichannel`, `mif`, ...); an empty cell means no file.
- a text column (`text`, `caption`, `report`, ...): the sample's text.
- `label` / `class` / `category`: the class name, for zero-shot classification.
- every other column is kept as metadata.
In a folder every file is an entry (modality from content); files with the same relative path up to the
first dot (`a/x.png`, `a/x.wav`) are one sample.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cl_core.errors import ClensError, Failure
from cl_core.formats import SIDECAR_SUFFIXES
from cl_core.modality import Modality
from cl_core.readers.text import TEXT_COLUMNS

ID_COLUMNS = ("id", "sample_id", "sample")
PATH_COLUMNS = ("path", "file", "filepath", "filename")
LABEL_COLUMNS = ("label", "class", "category")
MODALITY_COLUMNS = {
    "image": Modality.IMAGE, "img": Modality.IMAGE, "he": Modality.IMAGE, "h&e": Modality.IMAGE,
    "photo": Modality.IMAGE, "audio": Modality.AUDIO, "sound": Modality.AUDIO, "wav": Modality.AUDIO,
    "multichannel": Modality.MULTICHANNEL, "mif": Modality.MULTICHANNEL, "stack": Modality.MULTICHANNEL,
}
MANIFEST_SUFFIXES = (".csv", ".tsv", ".parquet")


class GalleryError(ClensError):
    """A gallery source cannot be read (missing folder, malformed manifest)."""


@dataclass(frozen=True)
class Entry:
    """One file or one text of a gallery; `modality` None means: decided by the file's content."""

    sample_id: str
    path: Path | None = None
    text: str | None = None
    modality: Modality | None = None
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def source(self) -> str:
        if self.path is not None:
            return str(self.path)
        text = self.text or ""
        return f"text:{text[:40]}"


@dataclass
class Gallery:
    name: str
    origin: str  # what the user opened: a folder, a manifest, demo:NAME
    entries: list[Entry]
    refused: list[Failure] = field(default_factory=list)  # rows naming files it may not read

    def __len__(self) -> int:
        return len(self.entries)


def open_source(spec: str | Path, allow_outside: bool = False) -> Gallery:
    """A folder, a .csv/.tsv/.parquet manifest, or `demo:NAME` (written on first use). A manifest's file
    columns are read under its own folder only, unless `allow_outside`."""
    text = str(spec)
    if text.startswith("demo:"):
        from cl_core.demo.galleries import DEMOS, demo_manifest

        name = text.split(":", 1)[1] or "shapes_sounds"
        if name not in DEMOS:
            raise GalleryError(f"{text}: no such demo (have: {', '.join(DEMOS)})")
        gallery = read_manifest(demo_manifest(name))
        gallery.origin = text
        gallery.name = f"demo {name}"
        return gallery
    path = Path(spec).expanduser()
    if path.is_dir():
        return read_folder(path)
    if not path.exists():
        raise GalleryError(f"{path}: no such file or folder")
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return read_manifest(path, allow_outside)
    raise GalleryError(f"{path}: a gallery is a folder or a .csv/.tsv/.parquet manifest")


def is_gallery_manifest(path: Path) -> bool:
    """A CSV/TSV whose header names a file column describes other files (a gallery), so walking a folder
    does not read it as texts (its captions would be embedded twice beside a captions file). Only the first
    line is read."""
    if path.suffix.lower() not in (".csv", ".tsv"):
        return False
    try:
        with open(path, "rb") as fh:
            first = fh.read(65536).split(b"\n", 1)[0].decode("utf-8-sig", "replace")
    except OSError:
        return False
    header = {c.strip().lower() for c in next(csv.reader([first], delimiter="\t" if path.suffix.lower() == ".tsv"
                                                          else ","), [])}
    return bool(header & (set(PATH_COLUMNS) | set(MODALITY_COLUMNS)))


def read_folder(folder: Path) -> Gallery:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p.relative_to(folder))
                   and not p.name.endswith(SIDECAR_SUFFIXES))
    entries = [Entry(sample_id=str(p.relative_to(folder).with_name(p.name.split(".")[0])), path=p) for p in files]
    return Gallery(folder.name, str(folder), entries)


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def read_manifest(path: Path, allow_outside: bool = False) -> Gallery:
    rows = _read_rows(path)
    if not rows:
        raise GalleryError(f"{path}: the manifest has no rows")
    columns = {c.strip().lower(): c for c in rows[0]}
    id_col = next((columns[c] for c in ID_COLUMNS if c in columns), None)
    path_col = next((columns[c] for c in PATH_COLUMNS if c in columns), None)
    text_col = next((columns[c] for c in TEXT_COLUMNS if c in columns), None)
    label_col = next((columns[c] for c in LABEL_COLUMNS if c in columns), None)
    modality_col = columns.get("modality")
    file_cols = {columns[c]: m for c, m in MODALITY_COLUMNS.items() if c in columns}
    if path_col is None and text_col is None and not file_cols:
        raise GalleryError(f"{path}: no file or text column (expected one of "
                           f"{', '.join(PATH_COLUMNS + tuple(MODALITY_COLUMNS) + TEXT_COLUMNS)})")
    used = {id_col, path_col, text_col, label_col, modality_col, *file_cols}
    base = path.parent
    inside = base.resolve()
    entries: list[Entry] = []
    refused: list[Failure] = []
    for n, row in enumerate(rows, start=2 if path.suffix.lower() != ".parquet" else 0):
        sample = _cell(row, id_col) or f"row{n}"
        label = _cell(row, label_col) or None
        meta = {k: v for k, v in row.items() if k not in used and v not in (None, "")}
        declared = None
        if modality_col is not None and _cell(row, modality_col):
            try:
                declared = Modality.parse(_cell(row, modality_col))
            except ValueError as exc:
                raise GalleryError(f"{path}, row {n}: {exc}") from None
        files = [(path_col, declared)] if path_col is not None else []
        files += list(file_cols.items())
        for col, modality in files:
            value = _cell(row, col)
            if value and "\0" in value:
                refused.append(Failure(repr(value), f"named by {path.name} (row {n}): not a file name (it holds "
                                       "a NUL byte)", "read"))
                continue
            if value:
                file = Path(value)
                file = file if file.is_absolute() else base / file
                if not allow_outside and not _under(file, inside):
                    refused.append(Failure(str(file), f"named by {path.name} (row {n}) but outside its folder "
                                           f"{inside}; a manifest reads files under its own folder unless allowed "
                                           "(--allow-outside-files)", "read"))
                    continue
                entries.append(Entry(sample, file, None, modality, label, meta))
        text = _cell(row, text_col)
        if text:
            entries.append(Entry(sample, None, text, Modality.TEXT, label, meta))
    return Gallery(path.stem, str(path), entries, refused)


def _under(file: Path, folder: Path) -> bool:
    """True when `file`, symbolic links followed, lies inside `folder` (a resolved path)."""
    try:
        return file.resolve().is_relative_to(folder)
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a name the system cannot take
        return False


def _cell(row: dict[str, Any], column: str | None) -> str:
    if column is None:
        return ""
    value = row.get(column)
    return "" if value is None else str(value).strip()


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        except (OSError, ValueError) as exc:
            raise GalleryError(f"{path}: not a readable Parquet file: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - pyarrow raises its own error types for corrupt files
            raise GalleryError(f"{path}: not a readable Parquet file: {type(exc).__name__}: {exc}") from None
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise GalleryError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise GalleryError(f"{path}: not UTF-8 text: {exc}") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        reader = csv.DictReader(io.StringIO(raw), delimiter=delimiter)
        rows = []
        for r in reader:
            if None in r:  # more cells than the header names: a stray delimiter or a broken quote
                raise GalleryError(f"{path}, line {reader.line_num}: {len(reader.fieldnames or ()) + len(r[None])} "
                                   f"cells, the header has {len(reader.fieldnames or ())}")
            if any((v or "").strip() for v in r.values() if isinstance(v, str)):
                rows.append(dict(r))
    except csv.Error as exc:
        raise GalleryError(f"{path}: malformed CSV: {exc}") from None
    if reader.fieldnames is None:
        raise GalleryError(f"{path}: the manifest is empty")
    return rows
