"""Reading a few rows of a large file without keeping it resident.

An open index answers a query from what it holds in memory; the files beside it (float vectors for exact
re-ranking, the rows' text) are read a few rows at a time. Through a memory map every row ever touched
stays in the page cache, so after some hundreds of queries the whole file is resident again. Here rows are
read with pread and their pages handed back to the kernel (POSIX_FADV_DONTNEED) straight away: what an
open index keeps is what it holds, measured (benchmarks/bench_real.py).
"""

from __future__ import annotations

import io
import math
import mmap
import os
import threading
from pathlib import Path

import numpy as np

_ADVISE = hasattr(os, "posix_fadvise")
PAGE = mmap.PAGESIZE


def forget(path: str | os.PathLike[str]) -> None:
    """Drop a file's clean pages from the page cache (best effort; a no-op where the OS has no fadvise)."""
    if not _ADVISE:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


class ColdFile:
    """Byte ranges of one file. Not `keep`: read with pread, each batch announced first (no readahead) and
    the file's pages dropped after it. `keep`: read through a memory map, the pages left to the page cache
    (no system call once they are cached: a hit list's ten rows by pread ~35 us here, against ~3)."""

    def __init__(self, path: Path, keep: bool = False) -> None:
        self.path = path
        self.keep = keep
        self._fd = os.open(path, os.O_RDONLY)
        if _ADVISE and not keep:  # no readahead: neighbouring pages would arrive after they were dropped
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)
        self._lock = threading.Lock()  # one fd, several search threads
        self._map = _map(self._fd) if keep else None  # (None for an empty file: nothing to read)

    def read(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """The bytes [start, end) of each range, in order. Each read of a page not in the cache waits on the
        disk (tens of microseconds), and a disk answers many at a time: so every range is first announced
        (POSIX_FADV_WILLNEED starts its read without waiting), then read. Measured on this machine's disk,
        100 cold 1.5 KB reads: 4.0 ms one by one, 2.4 ms from 4 threads, 0.9 ms announced first. Where the
        OS has no fadvise, many ranges are read by a few threads instead."""
        if self._map is not None:
            m = self._map
            return [m[start:end] for start, end in ranges]
        with self._lock:
            announce = _ADVISE and len(ranges) > 1 and not self.keep
            if announce:
                for start, end in ranges:
                    os.posix_fadvise(self._fd, start, end - start, os.POSIX_FADV_WILLNEED)
            if not announce and len(ranges) >= PARALLEL_FROM:
                out = _read_parallel(self._fd, ranges)
            else:
                out = [os.pread(self._fd, end - start, start) for start, end in ranges]
            if _ADVISE and ranges and not self.keep:  # whole pages only are dropped: widen to the pages the reads touched
                lo = min(ranges)[0] // PAGE * PAGE
                hi = -(-max(e for _, e in ranges) // PAGE) * PAGE
                os.posix_fadvise(self._fd, lo, hi - lo, os.POSIX_FADV_DONTNEED)
        return out

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
        os.close(self._fd)

    def __del__(self) -> None:
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass


def _map(fd: int, random: bool = False) -> mmap.mmap | None:
    """A read-only map of the whole file (None for an empty one, which cannot be mapped). `random`: no
    readahead when a page is faulted in (the caller announces the pages it reads)."""
    if not os.fstat(fd).st_size:
        return None
    m = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    if random and hasattr(m, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        m.madvise(mmap.MADV_RANDOM)
    return m


PARALLEL_FROM = 24  # without fadvise: fewer reads than this are read one by one (threads cost more than they save)
READERS = 4


def _read_parallel(fd: int, ranges: list[tuple[int, int]]) -> list[bytes]:
    """pread each range from READERS threads (pread releases the GIL); joined before returning. For systems
    without posix_fadvise (macOS, Windows): 100 cold reads 4.0 -> 2.4 ms here."""
    out: list[bytes] = [b""] * len(ranges)
    errors: list[OSError] = []

    def work(first: int) -> None:
        try:
            for i in range(first, len(ranges), READERS):
                start, end = ranges[i]
                out[i] = os.pread(fd, end - start, start)
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), name=f"cold-read-{i}") for i in range(READERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


class ColdRows:
    """Float rows of a float32 .npy matrix read on demand (for exact re-ranking), never kept resident."""

    def __init__(self, path: Path, shape: tuple[int, int], data_offset: int) -> None:
        self.file = ColdFile(path)
        self.shape = shape
        self.offset = data_offset
        self.row_bytes = shape[1] * 4

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """[len(rows), D] float32 for global row numbers (any order, repeats allowed)."""
        rows = np.asarray(rows, np.int64)
        uniq = np.unique(rows)
        ranges = _runs(uniq, self.offset, self.row_bytes)
        blob = b"".join(self.file.read(ranges))
        got = np.frombuffer(blob, np.float32).reshape(len(uniq), self.shape[1])
        return got[np.searchsorted(uniq, rows)]


def _runs(sorted_rows: np.ndarray, offset: int, row_bytes: int) -> list[tuple[int, int]]:
    """Byte ranges covering sorted rows, consecutive rows merged into one range."""
    if not len(sorted_rows):
        return []
    breaks = np.flatnonzero(np.diff(sorted_rows) != 1) + 1
    starts = np.r_[sorted_rows[0], sorted_rows[breaks]]
    ends = np.r_[sorted_rows[breaks - 1], sorted_rows[-1]] + 1
    return [(offset + int(s) * row_bytes, offset + int(e) * row_bytes) for s, e in zip(starts, ends, strict=True)]


def npy_layout(head: bytes) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, where the data starts) from a C-ordered .npy file's first bytes (the whole header).
    ValueError for anything else (a bad magic, a Fortran-ordered or object array, a header cut short)."""
    fmt = np.lib.format
    bio = io.BytesIO(head)
    version = fmt.read_magic(bio)
    shape, fortran, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(bio)
    if fortran:
        raise ValueError("Fortran-ordered")
    return tuple(int(v) for v in shape), dtype, bio.tell()


MAX_NPY_HEADER = 10_000  # numpy's own bound on a header (np.lib.format's max_header_size)


def npy_header_bytes(head: bytes) -> int:
    """How many bytes a .npy file's header takes, from its first 12. ValueError for a header longer than
    numpy reads, before anything that size is read (a forged length field asks for up to 4 GB)."""
    size_bytes = 2 if head[6:7] == b"\x01" else 4
    length = int.from_bytes(head[8:8 + size_bytes], "little")
    if length > MAX_NPY_HEADER:
        raise ValueError(f"its header says it is {length:,} bytes long (numpy reads at most {MAX_NPY_HEADER:,})")
    return 8 + size_bytes + length


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """A .npy file's (shape, dtype, where its data starts), its header read with pread and no readahead: a
    buffered read would start the kernel reading ahead into the rows, pages still arriving after the caller
    has dropped the file's pages (and then kept). ValueError as npy_layout."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _npy_header_of(fd)
    finally:
        os.close(fd)


def _npy_header_of(fd: int) -> tuple[tuple[int, ...], np.dtype, int]:
    if _ADVISE:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    head = os.pread(fd, PAGE, 0)
    if len(head) < 12:
        raise ValueError("shorter than a .npy header")
    need = npy_header_bytes(head)
    if need > len(head):
        head = os.pread(fd, need, 0)
    return npy_layout(head)


def check_layout(shape: tuple[int, ...], dtype: np.dtype, start: int, size: int) -> None:
    """ValueError unless a .npy header's array (a plain one, not of objects) fills the file's `size` bytes."""
    if dtype.hasobject or start + math.prod(shape) * dtype.itemsize != size:
        raise ValueError(f"its header says {shape} {dtype}, which is not its {size:,} bytes")


class MappedArray:
    """A .npy array read through a read-only memory map, its pages kept once read. `announce`: the pages a
    read needs that were not read before are announced together first (POSIX_FADV_WILLNEED) and faulted in
    without readahead, so a first round of cold reads is made at once (a fault waits for one page at a
    time) and only the pages asked for become resident; afterwards a read is an index into the map, no
    system call. (A fault also maps neighbouring pages that are already cached, up to 64 KB around it, which
    can then not be dropped while mapped: an opener that hashed the file drops its pages before mapping it.)
    ValueError for a file that is not a plain .npy array."""

    def __init__(self, path: Path, announce: bool = False) -> None:
        self.path = path
        fd = os.open(path, os.O_RDONLY)
        try:
            shape, dtype, self.start = _npy_header_of(fd)
            check_layout(shape, dtype, self.start, os.fstat(fd).st_size)
            self._map = _map(fd, random=announce)
        except BaseException:
            os.close(fd)
            raise
        if not announce:  # the map holds the file open; the descriptor is only for announcements
            if _ADVISE:  # the header was read without readahead; a scan through the map wants it back
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_NORMAL)
            os.close(fd)
        self._fd = fd if announce else -1
        count = math.prod(shape)
        m = self._map
        self.array = np.frombuffer(m, dtype, count, self.start).reshape(shape) if m is not None and count else \
            np.zeros(shape, dtype)
        self.itemsize = dtype.itemsize * (math.prod(shape[1:]) if len(shape) > 1 else 1)
        self._seen = bytearray(-(-(self.start + count * dtype.itemsize) // PAGE)) if announce and _ADVISE else None
        if self._seen:
            self._seen[0] = 1  # read for the header

    def want(self, spans: list[tuple[int, int]]) -> None:
        """Announce the pages of items [b, e) of each span that were not read before."""
        seen = self._seen
        if seen is None:
            return
        start, size = self.start, self.itemsize
        for b, e in spans:
            for page in range((start + size * b) // PAGE, (start + size * e - 1) // PAGE + 1):
                if not seen[page]:
                    os.posix_fadvise(self._fd, page * PAGE, PAGE, os.POSIX_FADV_WILLNEED)
                    seen[page] = 1

    def close(self) -> None:
        self.array = np.zeros(0, self.array.dtype)
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a view of it is still held elsewhere: the map goes when that does
                pass
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:  # an index dropped without being closed leaves no descriptor behind
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
