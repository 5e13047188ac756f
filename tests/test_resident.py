"""What an open index keeps: rows and float vectors read on demand are not left in the page cache, the
binary kind answers from its codes, and its files are checked like every other."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from cl_core.atomic import atomic_write
from cl_core.embed.gallery import Row
from cl_core.modality import Modality
from cl_core.search import coldread, kinds
from cl_core.search.coldread import ColdRows, npy_header
from cl_core.search.query import search
from cl_core.search.store import IndexFileError, build_index_set, load, save

_spec = importlib.util.spec_from_file_location("resident", Path(__file__).parents[1] / "benchmarks" / "resident.py")
assert _spec is not None and _spec.loader is not None
resident = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(resident)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_rows_read_on_demand_are_right_and_not_kept(tmp_path):
    x = np.random.default_rng(0).standard_normal((4000, 256)).astype(np.float32)
    path = tmp_path / "v.npy"
    with atomic_write(path) as fh:  # fsynced: clean pages, which the kernel can drop
        np.save(fh, x)
    resident.drop_cached(path)
    rows = ColdRows(path, x.shape, npy_header(path)[2])
    want = np.array([3999, 5, 6, 7, 5, 1200, 0])
    np.testing.assert_array_equal(rows(want), x[want])
    assert resident.cached_bytes(path) == 0
    fd, start = os.open(path, os.O_RDONLY), npy_header(path)[2]  # the same reads, not dropped after, stay cached
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # (no readahead still in flight when dropped below)
        for r in want:
            os.pread(fd, 1024, start + int(r) * 1024)
    finally:
        os.close(fd)
    assert resident.cached_bytes(path) > 0
    resident.drop_cached(path)
    many = np.random.default_rng(1).choice(4000, size=300, replace=False)  # announced, then read
    np.testing.assert_array_equal(rows(many), x[many])
    assert resident.cached_bytes(path) == 0


def test_many_rows_are_read_by_threads_where_the_os_cannot_announce_reads(tmp_path, monkeypatch):
    x = np.random.default_rng(2).standard_normal((2000, 64)).astype(np.float32)
    path = tmp_path / "v.npy"
    np.save(path, x)
    monkeypatch.setattr(coldread, "_ADVISE", False)  # as on macOS and Windows
    started = []
    real = coldread._read_parallel
    monkeypatch.setattr(coldread, "_read_parallel", lambda fd, ranges: started.append(len(ranges)) or real(fd, ranges))
    rows = ColdRows(path, x.shape, npy_header(path)[2])
    many = np.random.default_rng(3).choice(2000, size=200, replace=False)
    np.testing.assert_array_equal(rows(many), x[many])
    few = np.array([7, 1500])
    np.testing.assert_array_equal(rows(few), x[few])
    assert started and started[0] >= coldread.PARALLEL_FROM and len(started) == 1


def test_an_open_compact_index_keeps_no_file_pages_but_its_row_offsets_read(tmp_path):
    rng = np.random.default_rng(1)
    x = unit(rng.standard_normal((3000, 64)) + 2 * rng.standard_normal((1, 64)))  # a shared direction
    rows = [Row(i, f"s{i}", f"f{i}", Modality.IMAGE) for i in range(3000)]
    save(build_index_set(rows, x, {"fingerprint": "fp", "name": "m"}, {}, "binary"), tmp_path / "ix")
    files = list((tmp_path / "ix").iterdir())
    for p in files:
        resident.drop_cached(p)
    index = load(tmp_path / "ix")
    offsets = [p for p in files if p.name.endswith(".offsets.npy")]
    assert len(offsets) == 1 and resident.cached_bytes(offsets[0]) <= 2 * coldread.PAGE  # its ends, not read whole
    assert offsets[0].stat().st_size > 4 * coldread.PAGE
    for q in x[:20]:
        search(index, q[None], Modality.IMAGE, k=10)
    assert sum(resident.cached_bytes(p) for p in files if p not in offsets) == 0
    # the pages of the hits' offsets stay (8 bytes a row at most): the next hit lists find them cached
    assert 2 * coldread.PAGE < resident.cached_bytes(offsets[0]) <= -(-offsets[0].stat().st_size // coldread.PAGE) * coldread.PAGE


@pytest.mark.parametrize("kind", ["flat", "binary"])
def test_an_index_dropped_without_closing_leaves_no_file_open(tmp_path, kind):
    """The app reopens indexes as galleries are rebuilt: the files an open index maps or reads (vectors,
    rows, their offsets) are let go of with it, closed or not."""
    import gc

    rng = np.random.default_rng(2)
    x = unit(rng.standard_normal((600, 32)))
    save(build_index_set([Row(i, f"s{i}", f"f{i}", Modality.TEXT) for i in range(600)], x,
                         {"fingerprint": "fp", "name": "m"}, {}, kind), tmp_path / "ix")

    def open_files() -> int:
        gc.collect()
        return sum(1 for fd in os.listdir("/proc/self/fd")
                   if os.path.realpath(f"/proc/self/fd/{fd}").startswith(str(tmp_path)))

    assert open_files() == 0
    index = load(tmp_path / "ix")
    search(index, x[:1], Modality.TEXT, k=5)
    assert open_files() > 0
    del index
    assert open_files() == 0


def test_row_offsets_pages_are_announced_once_then_read_from_the_map(tmp_path, monkeypatch):
    """A compact index's row offsets: the pages a hit list needs are announced together the first time
    (their cold reads made at once); a later hit list over the same pages makes no system call for them."""
    from cl_core.search.rowtable import ColdOffsets

    offsets = np.cumsum(np.r_[0, np.arange(1, 3001)]).astype(np.int64)  # 3 pages and more
    path = tmp_path / "rows.offsets.npy"
    with atomic_write(path) as fh:
        np.save(fh, offsets)
    told: list[int] = []
    real = os.posix_fadvise
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, start, size, how: (
        told.append(start) if how == os.POSIX_FADV_WILLNEED else None, real(fd, start, size, how))[1])
    cold = ColdOffsets(path)
    at = np.array([5, 1200, 2990, 6])
    first, then = cold.pairs(at)
    np.testing.assert_array_equal(first, offsets[at])
    np.testing.assert_array_equal(then, offsets[at + 1])
    pages = {(128 + 8 * i) // coldread.PAGE for i in (1200, 1201, 2990, 2991)}  # page 0 was read for the header
    assert sorted(told) == sorted(p * coldread.PAGE for p in pages)
    told.clear()
    np.testing.assert_array_equal(cold.pairs(at[::-1])[0], offsets[at[::-1]])
    assert told == []
    cold.close()


def test_kept_rows_are_read_from_a_map_without_a_system_call(tmp_path, monkeypatch):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"".join(f"line {i}\n".encode() for i in range(500)))
    kept = coldread.ColdFile(path, keep=True)
    data = path.read_bytes()
    monkeypatch.setattr(os, "pread", lambda *a: pytest.fail("pread"))
    assert kept.read([(7, 20), (0, 3), (len(data) - 4, len(data))]) == [data[7:20], data[:3], data[-4:]]
    kept.close()


def test_binary_codes_are_centred_and_ranked_by_product_codes():
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((40, 64)) + 3.0  # every vector leans one way: raw sign bits say little
    both = unit(centres[rng.integers(0, 40, 5200)] + 0.7 * rng.standard_normal((5200, 64)))
    x, q = both[:5000], both[5000:]
    built = kinds.build("binary", x)
    assert built.pq is not None and built.pq_codes is not None and built.pq_codes.shape == (5000, 8)
    assert abs(np.mean(built.params["centre"]) - float(x.mean())) < 1e-4
    truth = kinds.exact_topk(q, x, 10)
    got = kinds.tune(built, q, truth, 10, kinds.exact_rerank(x))
    assert got >= kinds.RECALL_TARGET
    uncentred = kinds.search(kinds.Built("binary", built.index, {**built.params, "centre": [0.0] * 64}, 0, built.pq,
                                         built.pq_codes), q, 10, kinds.exact_rerank(x))[1]
    assert kinds.recall_at(uncentred, truth) < got  # the centre is what makes the bits informative
    # the candidates' order by their codes is the inner product with their reconstructions
    cand = kinds.search(kinds.Built("binary", built.index, {**built.params, "rerank": 50}), q[:1], 10,
                        lambda qq, c, k: (np.zeros((1, 1)), c))[1][0]
    recon = built.pq.decode(np.ascontiguousarray(built.pq_codes[cand]))
    want = cand[np.argsort(-(recon @ q[0]), kind="stable")[:40]]
    np.testing.assert_array_equal(np.sort(kinds._by_codes(built, q[0], cand, 40)), np.sort(want))
    # many Hamming candidates are found by counting distances (not a heap): the same answers, nearly exact
    wide = {**built.params, "rerank": 400, "exact": 100}
    assert 10 * wide["rerank"] >= kinds.COUNT_FROM
    found = kinds.search(kinds.Built("binary", built.index, wide, 0, built.pq, built.pq_codes), q, 10,
                         kinds.exact_rerank(x))[1]
    assert kinds.recall_at(found, truth) >= 0.99


@pytest.mark.parametrize("beside", [False, True])
def test_a_binary_index_answers_the_same_after_saving_and_forged_codes_are_refused(tmp_path, monkeypatch, beside):
    """`beside`: its arrays read on another thread while faiss reads its file (as a large index is opened)."""
    from cl_core.search import store

    if beside:
        monkeypatch.setattr(store, "BESIDE_FROM", 0)
    rng = np.random.default_rng(3)
    x = unit(rng.standard_normal((600, 32)))
    rows = [Row(i, f"s{i}", f"f{i}", Modality.TEXT) for i in range(600)]
    s = build_index_set(rows, x, {"fingerprint": "fp", "name": "m"}, {}, "binary")
    save(s, tmp_path / "ix")
    again = load(tmp_path / "ix")
    assert [h.row for h in search(again, x[:1], Modality.TEXT, k=5)] == [h.row for h in search(s, x[:1], Modality.TEXT, k=5)]
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    name = manifest["parts"][0]["pq_codes"]
    import hashlib
    import io

    def forged(blob: bytes, match: str) -> None:  # the checksum made to match: only the content can tell
        (tmp_path / "ix" / name).write_bytes(blob)
        manifest["files"][name] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
        (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(IndexFileError, match=match):
            load(tmp_path / "ix")

    def npy(arr: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=True)
        return buf.getvalue()

    forged(npy(np.zeros((599, 4), np.uint8)), "not 600 codes")  # one row short
    forged(npy(np.zeros((600, 4), np.uint8))[:-7], "not a plain .npy array")  # its header promises more bytes
    forged(npy(np.array([None] * 600, dtype=object)), "not a plain .npy array")  # pickled objects: never read
    forged(npy(np.asfortranarray(np.zeros((600, 4), np.uint8))), "not a plain .npy array")
    forged(b"not an array at all", "not a plain .npy array")
    forged(b"\x93NUMPY\x02\x00" + (2**32 - 16).to_bytes(4, "little") + b"{}", "numpy reads at most")  # never read


@pytest.mark.parametrize("z", [-60.0, -37.5, -20.0, -5.0, -1.0, 0.0, 0.5, 3.0, 9.0])
def test_fallback_logit_matches_scipy_in_both_tails(z):
    """logit of Phi(z)^n, with log Phi written inline for speed, against scipy's log_ndtr."""
    import math

    from scipy.special import log_ndtr

    from cl_core.search.relevance import extreme_value_logit

    for n in (1, 50_000):
        log_p = n * float(log_ndtr(z))
        want = log_p - math.log(-math.expm1(min(log_p, -1e-300)))
        assert extreme_value_logit(z, n) == pytest.approx(want, rel=1e-6)


def test_a_large_binary_index_is_scanned_in_shards_with_the_same_answers(tmp_path, monkeypatch):
    """Opened past SHARD_FROM codes, a binary index is split into shards scanned side by side: the same
    Hamming distances for every query, the same ranked answers, and saved again byte for byte as before (a
    count the shards do not divide evenly: the file is read straight into them)."""
    import faiss

    rng = np.random.default_rng(5)
    x = unit(rng.standard_normal((3001, 64)) + rng.standard_normal((1, 64)))
    save(build_index_set([Row(i, f"s{i}", f"f{i}", Modality.IMAGE) for i in range(3001)], x,
                         {"fingerprint": "fp", "name": "m"}, {}, "binary"), tmp_path / "ix")
    whole = load(tmp_path / "ix")
    monkeypatch.setattr(faiss, "omp_get_max_threads", lambda: 3)
    monkeypatch.setattr(kinds, "SHARD_FROM", 1000)
    split = load(tmp_path / "ix")
    one, parts = whole.parts[Modality.IMAGE].built.index, split.parts[Modality.IMAGE].built.index
    assert isinstance(parts, faiss.IndexBinaryShards) and len(kinds.scanned(parts)) == 3
    assert not isinstance(one, faiss.IndexBinaryShards) and parts.ntotal == one.ntotal == 3001
    bits = kinds._sign_bits(x[:40] - np.asarray(whole.parts[Modality.IMAGE].built.params["centre"], np.float32))
    for heap in (True, False):
        for scan in (one, *kinds.scanned(parts)):
            scan.use_heap = heap
        d1, i1 = one.search(bits, 200)
        d2, i2 = parts.search(bits, 200)
        np.testing.assert_array_equal(d1, d2)  # ties at the last distance may be other rows
        inside = d1 < d1[:, -1:]
        assert all(set(a[m]) == set(b[m]) for a, b, m in zip(i1, i2, inside, strict=True))
    for q in x[:20]:
        assert [h.row for h in search(whole, q[None], Modality.IMAGE)] == \
            [h.row for h in search(split, q[None], Modality.IMAGE)]
    assert kinds.serialize(split.parts[Modality.IMAGE].built) == kinds.serialize(whole.parts[Modality.IMAGE].built)


def test_a_forged_header_on_a_mapped_array_is_refused_before_it_is_read(tmp_path):
    """The vectors and row offsets are memory-mapped, not read: their headers are still bounded before they
    are read (np.load reads as long a header as the length field says, then checks it)."""
    import hashlib

    rng = np.random.default_rng(4)
    x = unit(rng.standard_normal((50, 16)))
    save(build_index_set([Row(i, f"s{i}", f"f{i}", Modality.TEXT) for i in range(50)], x,
                         {"fingerprint": "fp", "name": "m"}, {}, "flat"), tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    for prefix in ("vectors-", "rows-"):
        name = next(n for n in manifest["files"] if n.startswith(prefix) and n.endswith(".npy"))
        kept = (tmp_path / "ix" / name).read_bytes()
        blob = b"\x93NUMPY\x02\x00" + (2**32 - 16).to_bytes(4, "little") + b"{}"
        (tmp_path / "ix" / name).write_bytes(blob)
        forged = {**manifest, "files": {**manifest["files"], name: {"sha256": hashlib.sha256(blob).hexdigest(),
                                                                  "bytes": len(blob)}}}
        (tmp_path / "ix" / "manifest.json").write_text(json.dumps(forged))
        with pytest.raises(IndexFileError, match=f"{name}.*numpy reads at most"):
            load(tmp_path / "ix")
        (tmp_path / "ix" / name).write_bytes(kept)
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    assert load(tmp_path / "ix").vectors.shape == (50, 16)
