"""Check a faiss index file's own sizes before faiss reads it.

faiss trusts the counts inside its files: a vector's size field is used to allocate before the bytes are
read, so a file rewritten with a huge count (and its checksum updated to match) made faiss allocate GBs.
Here the header (kind, dimension, count) must agree with the index manifest, and every size field we walk
must fit in the bytes that follow it; every kind we write (flat, HNSW, IVF-PQ plain or packed for fast-scan, binary) is walked to its
last byte, so no count in the file can make faiss allocate more than the file holds.

The walk reads only the fields it checks (a few hundred bytes, or two words per list for IVF): given an
open file it reads them with pread and skips the rest unread, so faiss's own read is the only pass over
the file's bulk (copying skipped ranges out of a cold mapping read a 100 MB file twice).
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

FOURCC = {"flat": (b"IxFI",), "hnsw": (b"IHNf",), "ivfpq": (b"IvPQ", b"IwPQ", b"IwPf"), "binary": (b"IBxF",)}
FAST_SCAN = struct.Struct("<?QiQiQ")  # by_residual, code_size, bbs, M2, implem, qbs2
HEADER = struct.Struct("<iqqq?i")  # d, ntotal, two dummies, is_trained, metric
BINARY_HEADER = struct.Struct("<iiq?i")  # d (bits), code_size, ntotal, is_trained, metric


class BlobError(ValueError):
    """The index file's own structure disagrees with itself or with the manifest."""


class _Reader:
    """A cursor over the index's bytes, or over an open file read at offsets (nothing read twice or kept)."""

    def __init__(self, blob: bytes | BinaryIO) -> None:
        if isinstance(blob, (bytes, bytearray, memoryview)):
            self._bytes: bytes | None = bytes(blob) if not isinstance(blob, bytes) else blob
            self._fd, self.size = -1, len(blob)
        else:
            self._bytes, self._fd = None, blob.fileno()
            self.size = os.fstat(self._fd).st_size
        self.pos = 0

    def _at(self, pos: int, n: int) -> bytes:
        if self._bytes is not None:
            return self._bytes[pos:pos + n]
        got = os.pread(self._fd, n, pos)
        if len(got) != n:
            raise BlobError(f"the file ended at offset {pos + len(got):,} (it changed while being read)")
        return got

    def take(self, n: int) -> bytes:
        return self._at(self.skip(n), n)

    def skip(self, n: int) -> int:
        """Move past n bytes (checked to be there, not read); returns where they start."""
        if n < 0 or self.pos + n > self.size:
            raise BlobError(f"needs {n:,} bytes at offset {self.pos:,}, the file has {self.size - self.pos:,} left")
        start, self.pos = self.pos, self.pos + n
        return start

    def peek(self, n: int) -> bytes:
        return self._at(self.pos, min(n, self.size - self.pos))

    def unpack(self, s: struct.Struct) -> tuple:
        return s.unpack(self.take(s.size))

    def u64s(self) -> list[int]:
        """A size-prefixed vector of uint64, its values."""
        start = self.pos
        n = self.vector(8)
        return list(struct.unpack(f"<{n}Q", self._at(start + 8, 8 * n)))

    def vector(self, elem: int) -> int:
        """A size-prefixed vector: its size checked against what is left, then skipped; returns the size."""
        (n,) = struct.unpack("<Q", self.take(8))
        if n > (self.size - self.pos) // elem:
            raise BlobError(f"a vector of {n:,} elements at offset {self.pos - 8:,} is larger than the file")
        self.pos += n * elem
        return n


def check_blob(kind: str, blob: bytes | BinaryIO, dim: int, count: int) -> None:
    """Raise BlobError unless `blob` (the bytes, or the file open) is a `kind` index of `count` vectors of
    `dim` whose sizes fit the file."""
    r = _Reader(blob)
    fourcc = r.take(4)
    if fourcc not in FOURCC.get(kind, ()):
        raise BlobError(f"starts with {fourcc!r}, not a {kind} index")
    if kind == "binary":
        d, code_size, ntotal, _trained, _metric = r.unpack(BINARY_HEADER)
        _expect(d, dim, ntotal, count)
        if code_size != (dim + 7) // 8 or r.vector(1) != count * code_size:
            raise BlobError("its codes do not match its dimension and count")
    else:
        d, ntotal, _a, _b, _trained, _metric = r.unpack(HEADER)
        _expect(d, dim, ntotal, count)
        if kind == "flat":
            _flat_codes(r, dim, count)
        elif kind == "hnsw":
            _hnsw(r, dim, count)
        elif fourcc == b"IwPf":
            _ivfpq_fast_scan(r, dim, count)
        else:
            _ivfpq(r, dim, count)
    if r.pos != r.size:
        raise BlobError(f"{r.size - r.pos:,} bytes after the index's end")


def _expect(d: int, dim: int, ntotal: int, count: int) -> None:
    if d != dim or ntotal != count:
        raise BlobError(f"holds {ntotal:,} vectors of {d}-d, the manifest says {count:,} of {dim}-d")


def _flat_codes(r: _Reader, dim: int, count: int) -> None:
    if r.vector(4) != count * dim:  # the floats, counted in 4-byte words
        raise BlobError("its vectors do not match its dimension and count")


def _hnsw(r: _Reader, dim: int, count: int) -> None:
    r.vector(8)  # assign_probas
    r.vector(4)  # cum_nneighbor_per_level
    if r.vector(4) != count:  # levels
        raise BlobError("its graph's levels do not match its count")
    if r.vector(8) != count + 1:  # offsets
        raise BlobError("its graph's offsets do not match its count")
    r.vector(4)  # neighbors
    r.skip(5 * 4)  # entry point, max level, efConstruction, efSearch, one reserved int
    if r.take(4) != b"IxFI":
        raise BlobError("its vector storage is not a flat index")
    d, ntotal, _a, _b, _trained, _metric = r.unpack(HEADER)
    _expect(d, dim, ntotal, count)
    _flat_codes(r, dim, count)


def _ivf_header(r: _Reader, dim: int, count: int) -> int:
    """An IVF index's list count, coarse quantizer (flat) and direct map; returns the list count."""
    nlist, _nprobe = struct.unpack("<QQ", r.take(16))
    if not 0 < nlist <= max(count, 1):
        raise BlobError(f"{nlist:,} lists for {count:,} vectors")
    if r.take(4) != b"IxFI":
        raise BlobError("its coarse quantizer is not a flat index")
    d, ntotal, _a, _b, _trained, _metric = r.unpack(HEADER)
    _expect(d, dim, ntotal, nlist)
    _flat_codes(r, dim, nlist)
    (map_type,) = r.take(1)
    r.vector(8)  # the direct map's array
    if map_type == 2:
        r.vector(16)  # its hash table's (id, position) pairs
    return nlist


def _pq(r: _Reader, dim: int, code_size: int) -> int:
    """A product quantizer's shape and centroids; returns its sub-quantizer count."""
    pq_d, m, nbits = struct.unpack("<QQQ", r.take(24))
    if pq_d != dim or m == 0 or nbits == 0 or nbits > 16 or code_size != (m * nbits + 7) // 8:
        raise BlobError("its product quantizer does not match its dimension and code size")
    if r.vector(4) != dim * (1 << nbits):  # the PQ centroids
        raise BlobError("its product quantizer's centroids do not match its shape")
    return int(m)


def _ivfpq_fast_scan(r: _Reader, dim: int, count: int) -> None:
    """IVF-PQ packed for fast-scan: 4-bit codes in blocks of `bbs` vectors ("ilbl" lists), each list's
    codes exactly the blocks its size needs."""
    nlist = _ivf_header(r, dim, count)
    _residual, code_size, bbs, m2, _implem, _qbs2 = r.unpack(FAST_SCAN)
    ahead = r.peek(9)
    if ahead[:1] in (b"\x00", b"\x01") and ahead[1:] == struct.pack("<Q", dim):
        if r.take(1) == b"\x01":  # newer faiss: a cosine flag, then the inverse norms (never written here)
            r.vector(4)
    m = _pq(r, dim, code_size)
    if bbs <= 0 or bbs % 32 or m2 != m + m % 2 or code_size != (m * 4 + 7) // 8:
        raise BlobError("its fast-scan layout does not match its product quantizer")
    if r.take(4) != b"ilbl":
        raise BlobError("its inverted lists are not stored in blocks")
    lists, _cs, per_block, block_size = struct.unpack("<QQQQ", r.take(32))
    if lists != nlist or per_block != bbs or block_size != m2 * bbs // 2:
        raise BlobError("its inverted lists do not match its list count and block size")
    total = 0
    for _ in range(nlist):
        n = r.vector(8)  # ids
        total += n
        if r.vector(1) != -(-n // per_block) * block_size:
            raise BlobError("a list's codes do not fill the blocks its size needs")
    if total != count:
        raise BlobError(f"its lists hold {total:,} vectors, the manifest says {count:,}")


def _ivfpq(r: _Reader, dim: int, count: int) -> None:
    """Coarse quantizer (flat), direct map, product quantizer, then the inverted lists ("ilar"): their sizes
    must add up to the count and each list's codes and ids must be in the file."""
    nlist = _ivf_header(r, dim, count)
    r.skip(1)  # by_residual
    (code_size,) = struct.unpack("<Q", r.take(8))
    _pq(r, dim, code_size)
    if r.take(4) != b"ilar":
        raise BlobError("its inverted lists are not stored in the array format")
    lists, list_code_size = struct.unpack("<QQ", r.take(16))
    if lists != nlist or list_code_size != code_size:
        raise BlobError("its inverted lists do not match its list count and code size")
    layout = r.take(4)
    if layout == b"full":
        sizes = r.u64s()
        if len(sizes) != nlist:
            raise BlobError("its list sizes do not match its list count")
    elif layout == b"sprs":
        pairs = r.u64s()
        sizes = pairs[1::2]
        if len(pairs) % 2 or any(i >= nlist for i in pairs[0::2]):
            raise BlobError("its sparse list sizes name lists it does not have")
    else:
        raise BlobError(f"unknown inverted-list layout {layout!r}")
    if sum(sizes) != count:
        raise BlobError(f"its lists hold {sum(sizes):,} vectors, the manifest says {count:,}")
    for n in sizes:
        r.skip(n * (code_size + 8))  # codes, then 64-bit ids
