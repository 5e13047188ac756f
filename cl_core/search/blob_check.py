"""Check a faiss index file's own sizes before faiss reads it.

faiss trusts the counts inside its files: a vector's size field is used to allocate before the bytes are
read, so a file rewritten with a huge count (and its checksum updated to match) made faiss allocate GBs.
Here the header (kind, dimension, count) must agree with the index manifest, and every size field we walk
must fit in the bytes that follow it; the flat kinds and the HNSW graph are walked to the last byte. An
IVF-PQ file's header is checked; its inner lists are left to faiss after the checksum.
"""

from __future__ import annotations

import struct

FOURCC = {"flat": (b"IxFI",), "hnsw": (b"IHNf",), "ivfpq": (b"IvPQ", b"IwPQ"), "binary": (b"IBxF",)}
HEADER = struct.Struct("<iqqq?i")  # d, ntotal, two dummies, is_trained, metric
BINARY_HEADER = struct.Struct("<iiq?i")  # d (bits), code_size, ntotal, is_trained, metric


class BlobError(ValueError):
    """The index file's own structure disagrees with itself or with the manifest."""


class _Reader:
    def __init__(self, blob: bytes) -> None:
        self.blob, self.pos = blob, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.blob):
            raise BlobError(f"needs {n:,} bytes at offset {self.pos:,}, the file has {len(self.blob) - self.pos:,} left")
        part = self.blob[self.pos:self.pos + n]
        self.pos += n
        return part

    def unpack(self, s: struct.Struct) -> tuple:
        return s.unpack(self.take(s.size))

    def vector(self, elem: int) -> int:
        """A size-prefixed vector: its size checked against what is left, then skipped; returns the size."""
        (n,) = struct.unpack("<Q", self.take(8))
        if n > (len(self.blob) - self.pos) // elem:
            raise BlobError(f"a vector of {n:,} elements at offset {self.pos - 8:,} is larger than the file")
        self.pos += n * elem
        return n


def check_blob(kind: str, blob: bytes, dim: int, count: int) -> None:
    """Raise BlobError unless `blob` is a `kind` index of `count` vectors of `dim` whose sizes fit the file."""
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
        else:
            return  # ivfpq: header only
    if r.pos != len(blob):
        raise BlobError(f"{len(blob) - r.pos:,} bytes after the index's end")


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
    r.take(5 * 4)  # entry point, max level, efConstruction, efSearch, one reserved int
    if r.take(4) != b"IxFI":
        raise BlobError("its vector storage is not a flat index")
    d, ntotal, _a, _b, _trained, _metric = r.unpack(HEADER)
    _expect(d, dim, ntotal, count)
    _flat_codes(r, dim, count)
