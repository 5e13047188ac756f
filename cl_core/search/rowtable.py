"""An index's rows on disk: one JSON line per row plus the lines' offsets, read per row when asked for.

Parsing a million rows into Python objects costs tens of bytes per field and seconds on every open; a hit
list needs ten rows. So the rows file is one line per row ([entry, sample id, source, modality, label, text,
{metadata}]) and an int64 offsets array; a row is read and decoded when it is asked for: for the compact
kinds by pread, its pages not kept (see coldread); for the float kinds, whose memory is their floats, from
a map of the file (pages kept, no system call once cached). Whole columns (a map coloured by a metadata
column) are read in blocks, never kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, overload

import numpy as np

from cl_core.embed.gallery import Row
from cl_core.errors import ClensError
from cl_core.modality import Modality
from cl_core.search.coldread import ColdFile, MappedArray

PLAIN = (str, int, float, bool, type(None))
_MODALITIES = {m.value: m for m in Modality}
Record = tuple[int, str, str, str, str | None, str | None, dict[str, Any]]
"""A row as read: entry, sample id, source, modality (its value), label, text, metadata."""


def _as_row(rec: Record) -> Row:
    return Row(rec[0], rec[1], rec[2], _MODALITIES[rec[3]], rec[4], rec[5])


class RowFileError(ClensError):
    """A rows file or its offsets do not describe one JSON row per line."""


def write_rows(fh: IO[bytes], rows: Sequence[Row], meta: Mapping[str, Sequence[Any]]) -> np.ndarray:
    """Write one line per row to `fh`; return the offsets [N+1] (line i is bytes offsets[i]:offsets[i+1])."""
    offsets = np.zeros(len(rows) + 1, np.int64)
    pos = 0
    names = list(meta)
    for i, r in enumerate(rows):
        extra = {n: meta[n][i] for n in names if meta[n][i] not in (None, "")}
        fields: list[Any] = [r.entry, r.sample_id, r.source, r.modality.value, r.label, r.text]
        if extra:
            fields.append(extra)
        line = (json.dumps(fields, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
        fh.write(line)
        pos += len(line)
        offsets[i + 1] = pos
    return offsets


class ArrayOffsets:
    """A rows file's offsets held as an array (built in memory, or memory-mapped)."""

    def __init__(self, offsets: np.ndarray) -> None:
        if offsets.ndim != 1 or offsets.dtype != np.int64:
            raise RowFileError("the row offsets are not one int64 array")
        self._a = np.asarray(offsets)  # a plain ndarray (a subclass's indexing, np.memmap's, costs ~5 us a call)
        self.n = len(offsets)

    def __len__(self) -> int:
        return self.n

    def span(self, b: int, e: int) -> np.ndarray:
        """offsets[b:e]."""
        return np.asarray(self._a[b:e])

    def pairs(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offsets[at], offsets[at + 1])."""
        return self._a[at], self._a[at + 1]

    def close(self) -> None:
        pass


class ColdOffsets(ArrayOffsets):
    """A rows file's offsets (.npy, int64) mapped, never read whole (8 MB a million rows, 6 ms an open):
    the pages a hit list needs are announced together the first time (its cold reads made at once, no
    readahead) and kept, at most 8 bytes a row, reached over many queries; later hit lists read them from
    the map without a system call (ten pairs by pread: ~70 us here, with their announcements)."""

    def __init__(self, path: Path) -> None:
        try:
            self._mapped = MappedArray(path, announce=True)
        except (ValueError, OSError) as exc:
            raise RowFileError(f"{path}: not a plain .npy array of offsets: {exc}") from None
        a = self._mapped.array
        if a.ndim != 1 or a.dtype != np.dtype("<i8"):
            self._mapped.close()
            raise RowFileError(f"{path}: holds {a.shape} {a.dtype}, not the int64 offsets of its rows")
        super().__init__(a)
        self.path = path

    def span(self, b: int, e: int) -> np.ndarray:
        self._mapped.want([(b, e)])
        return super().span(b, e)

    def pairs(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._mapped.want([(i, i + 2) for i in at.tolist()])
        return super().pairs(at)

    def close(self) -> None:
        self._a = np.zeros(0, np.int64)  # (the map cannot close while a view of it is held)
        self._mapped.close()


class RowTable(Sequence[Row]):
    """The rows of an index folder, decoded one at a time from the memory-mapped file."""

    def __init__(self, path: Path, offsets: np.ndarray | ColdOffsets, columns: Sequence[str],
                 keep: bool = False) -> None:
        """Only the offsets' ends are checked here (no pass over a million offsets on open); each row's own
        pair is checked when the row is read."""
        size = path.stat().st_size
        self.offsets = offsets if isinstance(offsets, ColdOffsets) else ArrayOffsets(offsets)
        n = len(self.offsets) - 1
        if n < 1 or self.offsets.span(0, 1)[0] != 0 or self.offsets.span(n, n + 1)[0] != size:
            raise RowFileError(f"{path}: its offsets do not cut it into {max(n, 0):,} rows")
        self.size = size
        self.path = path
        self.columns = tuple(columns)
        self._file = ColdFile(path, keep)  # keep: rows read stay in the page cache (for an index of floats)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, i: int) -> Row: ...
    @overload
    def __getitem__(self, i: slice) -> list[Row]: ...

    def __getitem__(self, i: int | slice) -> Row | list[Row]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return _as_row(self._decode(i))

    def __iter__(self) -> Iterator[Row]:
        for i, line in self._lines():
            yield _as_row(self._parse(i, line))

    def _lines(self, block: int = 4096) -> Iterator[tuple[int, bytes]]:
        """Every row's line, read a block of rows at a time."""
        for b in range(0, len(self), block):
            e = min(b + block, len(self))
            cuts = self.offsets.span(b, e + 1)
            self._check(b, cuts)
            base = int(cuts[0])
            (blob,) = self._file.read([(base, int(cuts[-1]))])
            for i in range(b, e):
                yield i, blob[int(cuts[i - b]) - base:int(cuts[i - b + 1]) - base]

    def _check(self, first: int, cuts: np.ndarray) -> None:
        """Rows first.. are cut by `cuts` (their offsets, then the next row's): each must be a non-empty
        range inside the file, in order (the offsets are checked where they are used)."""
        if cuts[0] < 0 or cuts[-1] > self.size or bool(np.any(cuts[1:] <= cuts[:-1])):
            bad = first + int(np.argmax((cuts[1:] <= cuts[:-1]) | (cuts[1:] > self.size) | (cuts[:-1] < 0)))
            raise RowFileError(f"{self.path}: its offsets do not cut out row {bad:,}")

    def records(self, rows: Sequence[int]) -> list[Record]:
        """Rows as checked records, read together (one batch of reads for a hit list) and decoded in one
        json call (a hit list's ten rows cost about what one row costs on its own)."""
        # (a hit list is ten rows: checked in plain Python, which is faster than numpy's calls at that size)
        n = len(self.offsets) - 1
        idx: list[int] = np.asarray(rows, np.int64).reshape(-1).tolist()
        if any(not -n <= r < n for r in idx):
            raise IndexError(f"a row outside 0..{n - 1}")
        idx = [r % n for r in idx]
        starts, ends = self.offsets.pairs(np.array(idx, np.int64))
        spans = list(zip(starts.tolist(), ends.tolist(), strict=True))
        for r, (b, e) in zip(idx, spans, strict=True):
            if not 0 <= b < e <= self.size:
                raise RowFileError(f"{self.path}: its offsets do not cut out row {r:,}")
        lines = self._file.read(spans)
        try:
            decoded = json.loads(b"[" + b",".join(lines) + b"]")
        except ValueError:
            decoded = None
        if not isinstance(decoded, list) or len(decoded) != len(idx):  # one line at a time, to name the bad one
            return [self._parse(i, line) for i, line in zip(idx, lines, strict=True)]
        return [self._record(i, fields) for i, fields in zip(idx, decoded, strict=True)]

    def meta_of(self, i: int) -> dict[str, Any]:
        """Row i's metadata (the gallery's other columns; empty values left out)."""
        return self._decode(i)[6]

    def _decode(self, i: int) -> Record:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} of {n}")
        i %= n
        cuts = self.offsets.span(i, i + 2)
        self._check(i, cuts)
        (line,) = self._file.read([(int(cuts[0]), int(cuts[1]))])
        return self._parse(i, line)

    def _parse(self, i: int, line: bytes) -> Record:
        try:
            fields = json.loads(line)
        except ValueError as exc:
            raise RowFileError(f"{self.path}: row {i:,} is not a valid index row: {exc}") from None
        return self._record(i, fields)

    def _record(self, i: int, fields: Any) -> Record:
        try:
            e, s, src, m, lab, txt, *rest = fields
            meta = rest[0] if rest else {}
            if rest and (len(rest) > 1 or type(meta) is not dict
                         or not all(isinstance(v, PLAIN) for v in meta.values())):
                raise ValueError("metadata is not one object of plain values")
            if (lab is not None and type(lab) is not str) or (txt is not None and type(txt) is not str):
                raise ValueError("label and text are strings or null")
            if m not in _MODALITIES:
                raise ValueError(f"{m!r} is not a modality")
            return (e if type(e) is int else int(e), s if type(s) is str else str(s),
                    src if type(src) is str else str(src), m, lab, txt, meta)
        except (ValueError, TypeError) as exc:
            raise RowFileError(f"{self.path}: row {i:,} is not a valid index row: {exc}") from None

    def close(self) -> None:
        self._file.close()
        self.offsets.close()


class MetaColumns(Mapping[str, Sequence[Any]]):
    """The gallery's metadata as columns (name -> one value per row), read from a RowTable on demand."""

    def __init__(self, table: RowTable) -> None:
        self._table = table

    def __getitem__(self, name: str) -> Sequence[Any]:
        if name not in self._table.columns:
            raise KeyError(name)
        return _Column(self._table, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.columns)

    def __len__(self) -> int:
        return len(self._table.columns)


class _Column(Sequence[Any]):
    def __init__(self, table: RowTable, name: str) -> None:
        self._table, self._name = table, name

    def __len__(self) -> int:
        return len(self._table)

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._table.meta_of(i).get(self._name)

    def __iter__(self) -> Iterator[Any]:
        for i, line in self._table._lines():
            yield self._table._parse(i, line)[6].get(self._name)
