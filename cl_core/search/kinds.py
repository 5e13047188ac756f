"""The index kinds (faiss), how each is built and searched, and how the app picks one by gallery size.

Every kind searches L2-normalised float32 vectors by inner product (= cosine):
- flat: exact. Batched search uses BLAS once queries exceed `distance_compute_blas_threshold` (set low here).
- hnsw: graph search (IndexHNSWFlat); efSearch tuned after building to reach the recall target.
- ivfpq: inverted lists over 4-bit product-quantised codes (d/8 bytes a vector, or d/4 where the build
  measures that d/8 cannot reach the recall target), scanned with faiss's fast-scan kernels; its best
  candidates by the codes are re-ranked exactly against the float vectors, which stay on disk and are read
  only for those rows.
- binary: sign bits of the vectors less their mean (d/8 bytes, 32x less than float32; centring matters for
  embeddings that share a common direction), scanned by Hamming distance, in the spirit of QuIVer's binary
  quantisation for contrastive embeddings; the candidates are ranked by product-quantised codes held beside
  them (another d/8 bytes, or d/4 where the build measures that d/8 would need many rows re-read: see
  `finer_reason`), and only the best few are read from the float vectors for exact scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from cl_core.choices import INDEX_KINDS as KINDS
from cl_core.errors import ClensError
from cl_core.search.blob_check import BINARY_HEADER

IVFPQ_MIN = 256

faiss.cvar.distance_compute_blas_threshold = 20  # batched flat search: BLAS from 20 queries on, ~8x faster

RECALL_TARGET = 0.95
# Settings are measured on a few hundred gallery rows (store.RECALL_QUERIES = 300: a standard error of about
# 0.005 at recall 0.95), held out of what the index learnt from (`training_rows`; a graph: store._tune_held_out);
# a setting is taken when it reaches the target plus this margin, so that the recall holds on other queries
# too (benchmarks/bench_real.py measures it on held-out ones).
TUNE_TARGET = RECALL_TARGET + 0.01


def auto_kind(n: int) -> str:
    """Exact below 50k vectors (a few ms a query); HNSW to 5M; IVF-PQ beyond, where floats stop fitting in RAM."""
    if n < 50_000:
        return "flat"
    if n < 5_000_000:
        return "hnsw"
    return "ivfpq"


@dataclass
class Built:
    """A built index plus what the manifest needs to rebuild the search around it."""

    kind: str
    index: Any  # faiss.Index or faiss.IndexBinary
    params: dict[str, Any] = field(default_factory=dict)  # search-time knobs (efSearch, nprobe, rerank)
    bytes_per_vector: float = 0.0  # resident memory per vector, float vectors on disk not counted
    pq: Any = None  # binary: the product quantiser whose codes rank the Hamming candidates
    pq_codes: np.ndarray | None = None  # binary: [n, m] uint8


ADD_CHUNK = 1 << 16  # rows handed to faiss at a time when filling an IVF-PQ index


def build(kind: str, vectors: np.ndarray, seed: int = 0, fine: bool = False,
          held: np.ndarray | None = None) -> Built:
    """Build `kind` over normalised float32 vectors [n, d]. `fine`: the compact kinds' larger product codes
    (ivfpq: see `_ivfpq`; binary: d/4-byte codes to rank its Hamming candidates, instead of d/8).
    `held`: rows left out of the quantisers' training (still indexed): the rows the build then measures its
    recall with (see `training_rows`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {', '.join(KINDS)}")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    index: Any
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        index.add(x)
        return Built(kind, index, {}, 4.0 * d)
    if kind == "hnsw":
        m = 32
        index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.add(x)
        return Built(kind, index, {"efSearch": 64}, 4.0 * d + 2 * m * 4 * 1.05)
    if kind == "ivfpq":
        return _ivfpq(x, seed, fine, held)
    centre = x.mean(axis=0)
    index = faiss.IndexBinaryFlat(d)
    for k in range(0, n, ADD_CHUNK):
        index.add(_sign_bits(x[k:k + ADD_CHUNK] - centre))
    m = _pq_subquantizers(d, 4 if fine else 8)
    pq, codes = None, None
    if n >= IVFPQ_MIN:  # below, every candidate is read exactly anyway
        pq = faiss.ProductQuantizer(d, m, 8)
        pq.cp.min_points_per_centroid = 1  # small galleries train on what they have, without a warning on stderr
        pq.train(np.ascontiguousarray(x[training_rows(n, 65_536, np.random.default_rng(seed), held)]))
        codes = np.concatenate([pq.compute_codes(np.ascontiguousarray(x[k:k + ADD_CHUNK]))
                                for k in range(0, n, ADD_CHUNK)])
    return Built(kind, index, {"rerank": 20, "exact": 5, "centre": [float(v) for v in centre]},
                 d / 8.0 + (m if pq is not None else 0), pq, codes)


HOLD_SHARE = 0.1  # measurement rows are left out of training while they are at most this share of the rows


def training_rows(n: int, size: int, rng: np.random.Generator, held: np.ndarray | None) -> np.ndarray:
    """Up to `size` rows to train a quantiser on (sorted), drawn from the rows not `held`. Trained on the
    rows its recall is measured with, an index knows those queries better than a user's (coarse centroids
    pulled towards them): 50k real sentences, IVF-PQ tuned to 0.963 on such rows gave 0.954 on held-out
    queries. A small part (held rows over HOLD_SHARE of it) trains on every row."""
    pool = np.arange(n)
    if held is not None and len(held) and len(held) <= HOLD_SHARE * n:
        pool = np.setdiff1d(pool, held)
    if size >= len(pool):
        return pool
    return np.sort(rng.choice(pool, size=size, replace=False))


def _ivfpq(x: np.ndarray, seed: int, fine: bool, held: np.ndarray | None = None) -> Built:
    """Inverted lists of 4-bit product-quantised codes, searched with faiss's fast-scan kernels (SIMD lookup
    tables in registers: several times faster per code than 8-bit PQ, so many more lists can be probed).
    Codes are d/8 bytes (4-d sub-vectors), or d/4 when `fine` (2-d sub-vectors): the build tries the small
    codes first and takes the fine ones only when the small ones cannot reach the recall target
    (store.build_index_set). Saved packed for fast-scan (blob_check walks that layout too), so that opening
    it reads the blocks as they are searched. Indexes saved by earlier versions (8-bit codes) still open."""
    n, d = x.shape
    if n < IVFPQ_MIN:
        raise ClensError(f"an ivfpq index needs at least {IVFPQ_MIN} vectors of a modality to train on "
                         f"(this one has {n}); use flat or hnsw, or let --kind auto choose")
    nlist = int(min(max(1, n // 39), max(16, 4 * math.sqrt(n))))
    m = _pq_subquantizers(d, 2 if fine else 4)
    quantizer = faiss.IndexFlatIP(d)
    plain = faiss.IndexIVFPQ(quantizer, d, nlist, m, 4, faiss.METRIC_INNER_PRODUCT)
    plain.pq.cp.min_points_per_centroid = 1  # no stderr warning for a small gallery
    plain.cp.min_points_per_centroid = 1
    size = max(256 * 39, nlist * 50) if n > 256 * 39 else n
    plain.train(np.ascontiguousarray(x[training_rows(n, size, np.random.default_rng(seed), held)]))
    for k in range(0, n, ADD_CHUNK):  # filled shard by shard: a memory-mapped gallery is paged in a shard at a time
        plain.add(np.ascontiguousarray(x[k:k + ADD_CHUNK]))
    code = plain.code_size
    return Built("ivfpq", _fast_scan(plain), {"nprobe": 16, "rerank": 10},
                 float(code + 8) + 4.0 * d * nlist / max(n, 1))


def _fast_scan(index: Any) -> Any:
    """An IVF-PQ of 4-bit codes repacked for fast-scan search (same codes and lists). The repacked index
    borrows the original's coarse quantizer: it gets its own copy, so that the original can be freed."""
    fast = faiss.IndexIVFPQFastScan(index)
    quantizer = faiss.clone_index(index.quantizer)
    quantizer.this.disown()  # type: ignore[attr-defined]  # SWIG: the index owns it now
    fast.quantizer = quantizer
    fast.own_fields = True
    return fast


def has_finer_codes(kind: str, d: int) -> bool:
    """Whether `kind`'s fine codes differ from its small ones at this dimension (they are the same when d has
    no divisor near the finer width apart from the one both fall back to, e.g. 30 or 33)."""
    small, fine = {"ivfpq": (4, 2), "binary": (8, 4)}.get(kind, (0, 0))
    return bool(small) and _pq_subquantizers(d, fine) != _pq_subquantizers(d, small)


FINER_EXACT = 10  # binary: re-reading more rows than this per hit shown costs more than scanning larger codes


def finer_reason(built: Built, got: float, k: int) -> str:
    """Why a tuned compact index should be built again with finer codes ("" when it should not): it falls
    short of the recall target, or (binary) reaches it only by re-reading many float rows from disk per query,
    which larger codes that rank its candidates better avoid (1M x 384 here: 400 rows read, 10.8 ms a query,
    with d/8-byte codes; 100 rows, 4.9 ms, with d/4)."""
    if not has_finer_codes(built.kind, int(built.index.d)) or (built.kind == "binary" and built.pq is None):
        return ""
    if got < TUNE_TARGET:
        return f"recall@10 {got:.3f} with the small ones"
    exact = int(built.params.get("exact", 0))
    if built.kind == "binary" and exact > FINER_EXACT:
        return f"the small ones need {k * exact} rows re-read from disk a query"
    return ""


def better(a: Built, got_a: float, b: Built, got_b: float, k: int) -> bool:
    """Whether tuned index a is the better choice than b: both reaching the recall target, the faster by the
    estimated time per query; else the one with the higher recall."""
    if got_a >= TUNE_TARGET and got_b >= TUNE_TARGET:
        return cost_ns(a, k) < cost_ns(b, k)
    return got_a > got_b


def _pq_subquantizers(d: int, width: int = 8) -> int:
    """Sub-quantizers for sub-vectors of about `width` dimensions (faiss needs d % m == 0)."""
    for m in (d // width, d // 4, d // 2, d):
        if m >= 1 and d % m == 0:
            return m
    return 1


def _sign_bits(x: np.ndarray) -> np.ndarray:
    d = x.shape[1]
    if d % 8:
        raise ValueError(f"binary codes need a dimension divisible by 8, got {d}")
    return np.packbits(x > 0, axis=1)


Rerank = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]
Fetch = Callable[[np.ndarray], np.ndarray]  # positions -> their float rows [len, d]


def exact_rerank(vectors: np.ndarray | Fetch, offset: int = 0) -> Rerank:
    """Score candidate positions exactly against float vectors: an array (rows offset + position, memory-mapped
    is fine) or a function that reads rows on demand. The candidates of every query are read in one go."""
    fetch: Fetch = vectors if callable(vectors) else (lambda pos: np.asarray(vectors[offset + pos], np.float32))

    def run(q: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.full((len(q), k), -np.inf, np.float32)
        pos = np.full((len(q), k), -1, np.int64)
        wanted = np.unique(cand[cand >= 0])  # sorted: reads the file in order
        if not len(wanted):
            return scores, pos
        rows = fetch(wanted)
        for i, row in enumerate(cand):
            c = np.unique(row[row >= 0])
            if not len(c):
                continue
            s = rows[np.searchsorted(wanted, c)] @ q[i]
            top = np.argsort(-s, kind="stable")[:k]
            scores[i, :len(top)], pos[i, :len(top)] = s[top], c[top]
        return scores, pos

    return run


COUNT_FROM = 1000  # Hamming candidates from which faiss counts distances instead of keeping a heap
# (1M codes of 48 bytes, measured here: 30,000 candidates 14.9 ms by heap, 4.4 ms by counting; 100: 2.0 and 2.3)


def search(built: Built, queries: np.ndarray, k: int, rerank: Rerank, spare: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(scores [Q, k + spare], positions [Q, k + spare]); -1 positions where the index has fewer vectors.

    `rerank(queries, candidates, k)` scores candidate positions exactly (the float vectors on disk).
    `spare`: results beyond k, with the candidates of a search for k plus one for each spare result (tuning
    on gallery rows: room for the query's own row, left out after). Searching k + 1 instead would give every candidate list
    a tenth more room than a search for k has, and the recall measured so would overstate the real one
    (50k real sentences here: tuned to 0.961, 0.948 on held-out queries).
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    p = built.params
    out = k + spare
    if built.kind == "flat":
        return built.index.search(q, out)
    if built.kind == "hnsw":
        built.index.hnsw.efSearch = max(int(p.get("efSearch", 64)), out)
        return built.index.search(q, out)
    fetch = min(max(k * int(p.get("rerank", 10)) + spare, out), built.index.ntotal)
    if built.kind == "ivfpq":
        built.index.nprobe = min(int(p.get("nprobe", 16)), built.index.nlist)  # fast-scan misreads beyond nlist
        _, cand = built.index.search(q, fetch)
        return rerank(q, cand, out)
    centre = np.asarray(p.get("centre", np.zeros(q.shape[1])), np.float32)
    for scan in scanned(built.index):  # each shard's own setting
        scan.use_heap = fetch < COUNT_FROM
    _, cand = built.index.search(_sign_bits(q - centre), fetch)
    if built.pq is not None and built.pq_codes is not None:  # rank the candidates by their codes, read the best
        best = min(max(k * int(p.get("exact", 5)) + spare, out), fetch)
        cand = np.stack([_by_codes(built, qi, ci, best) for qi, ci in zip(q, cand, strict=True)])
    return rerank(q, cand, out)


def _by_codes(built: Built, q: np.ndarray, cand: np.ndarray, best: int) -> np.ndarray:
    """The `best` candidates by the inner product with their product-quantised reconstructions: faiss scans
    the candidates' codes with the query's look-up table (asymmetric distance), in C++ (30,000 candidates of
    48 codes: 1 ms, against 7 ms for the same table look-ups and sort in numpy)."""
    out = np.full(best, -1, np.int64)
    c = cand[cand >= 0]
    if not len(c) or built.pq_codes is None or built.pq is None:
        return out
    got = min(best, len(c))
    codes = np.take(built.pq_codes, c, axis=0)  # (4x faster than fancy indexing for many rows)
    x = np.ascontiguousarray(q.reshape(1, -1), np.float32)
    val, ids = np.empty((1, got), np.float32), np.full((1, got), -1, np.int64)
    heap = faiss.float_minheap_array_t()
    heap.nh, heap.k, heap.val, heap.ids = 1, got, faiss.swig_ptr(val), faiss.swig_ptr(ids)
    built.pq.search_ip(faiss.swig_ptr(x), 1, faiss.swig_ptr(codes), len(codes), heap, True)
    top = c[ids[0][ids[0] >= 0]]
    out[:len(top)] = top
    return out


def tune(built: Built, queries: np.ndarray, truth: np.ndarray, k: int, rerank: Rerank,
         target: float = TUNE_TARGET, exclude: np.ndarray | None = None) -> float:
    """Pick the cheapest search setting that reaches `target` recall@k against `truth`; return its recall.
    `exclude`: a position per query left out of its answers (the query's own row; -1 for none).

    Settings are tried from cheap to costly; without one reaching the target, the best one is kept.
    """
    grid: list[dict[str, int]] = {
        "hnsw": [{"efSearch": v} for v in (16, 32, 64, 128, 256, 512, 1024)],
        "ivfpq": _ivfpq_grid(built, k),
        "binary": _binary_grid(built, k),
    }.get(built.kind, [])
    def measured() -> float:
        extra = 0 if exclude is None else 1
        found = search(built, queries, min(k, built.index.ntotal - extra), rerank, spare=extra)[1]
        return recall_at(_drop(found, exclude, k), truth)

    if not grid:
        return measured()
    best: tuple[float, dict[str, int]] = (-1.0, grid[-1])
    for setting in grid:
        built.params.update(setting)
        got = measured()
        if got > best[0]:
            best = (got, setting)
        if got >= target:
            return got
    built.params.update(best[1])
    return best[0]


CODE_NS = (2.0, 0.1)  # fast-scan time per code scanned: ns, plus ns per code byte (measured at 1M x 384)
READ_NS = 10_000  # one float row read for re-ranking, from disk, announced with the others first (coldread)


CAND_NS = 100  # binary: one Hamming candidate (counted, its product code gathered and scored), at 1M x 384


def cost_ns(built: Built, k: int) -> float:
    """Estimated time per query of a tuned compact index at its settings (for choosing between code sizes)."""
    p = built.params
    if built.kind == "ivfpq":
        return _ivfpq_cost(built, k, int(p.get("nprobe", 16)), int(p.get("rerank", 10)))
    if built.kind == "binary":
        return _binary_cost(built, k, int(p.get("rerank", 20)), int(p.get("exact", 5)))
    return 0.0


def _binary_cost(built: Built, k: int, rerank: int, exact: int) -> float:
    cand = min(k * rerank, built.index.ntotal)
    reads = min(k * exact, cand) if built.pq is not None else cand  # without codes every candidate is read
    return cand * CAND_NS + reads * READ_NS


def _binary_grid(built: Built, k: int) -> list[dict[str, int]]:
    """Hamming candidates x rows re-read, ordered by estimated time per query (a row read from disk costs
    about as much as a hundred candidates). Without product codes every candidate is read: one knob."""
    reranks = (10, 20, 50, 100, 200, 500, 1000, 2000, 3000)  # from 100 candidates: cheap, and robust to
    # queries unlike the gallery rows tuned on (text queries of an image gallery: 20 candidates tuned to 0.96
    # on images gave 0.91 on the tissue demo's texts)
    if built.pq is None:
        return [{"rerank": r, "exact": r} for r in reranks]
    grid = sorted((_binary_cost(built, k, r, e), r, e) for r in reranks
                  for e in (2, 3, 5, 7, 10, 15, 20, 30, 40, 60) if e <= r)
    return [{"rerank": r, "exact": e} for _, r, e in grid]


def _ivfpq_cost(built: Built, k: int, nprobe: int, rerank: int) -> float:
    index = built.index
    nlist = int(getattr(index, "nlist", 1))
    code_ns = CODE_NS[0] + CODE_NS[1] * int(getattr(index, "code_size", 0))
    return min(nprobe, nlist) * index.ntotal / max(nlist, 1) * code_ns + k * rerank * READ_NS


def _ivfpq_grid(built: Built, k: int) -> list[dict[str, int]]:
    """nprobe x rerank settings ordered by their estimated time per query: the codes scanned plus the rows
    read from disk for re-ranking. A row read costs as much as scanning thousands of codes, so probing
    more lists comes before reading more rows."""
    nlist = int(getattr(built.index, "nlist", 1))
    probes = sorted({min(p, nlist) for p in (4, 8, 16, 32, 64, 128, 256, 512, 768, 1024)})
    # from 3 candidates per hit: 2 tuned to 0.96 on the tissue demo's images gave 0.947 on its texts (3: 0.996)
    grid = [(_ivfpq_cost(built, k, p, r), p, r) for p in probes for r in (3, 5, 7, 10, 20)]
    return [{"nprobe": p, "rerank": r} for _, p, r in sorted(grid)]


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true top-k found in its returned top-k."""
    k = truth.shape[1]
    hits = [len(set(f[:k].tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / k if hits else 1.0


def exact_topk(queries: np.ndarray, vectors: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Ground-truth positions by exact inner product (faiss.knn, BLAS); `exclude` as in `tune`."""
    extra = 0 if exclude is None else 1
    _, idx = faiss.knn(np.ascontiguousarray(queries, np.float32), np.ascontiguousarray(vectors, np.float32),
                       min(k + extra, len(vectors)), metric=faiss.METRIC_INNER_PRODUCT)
    return _drop(idx, exclude, k)


def _drop(found: np.ndarray, exclude: np.ndarray | None, k: int) -> np.ndarray:
    """Each row's first k positions other than its excluded one."""
    if exclude is None:
        return found[:, :k]
    out = np.full((len(found), k), -1, np.int64)
    for i, (row, skip) in enumerate(zip(found, exclude, strict=True)):
        kept = row[row != skip][:k]
        out[i, :len(kept)] = kept
    return out


def serialize(built: Built) -> bytes:
    if built.kind == "binary":
        return faiss.serialize_index_binary(_unsharded(built.index)).tobytes()
    return faiss.serialize_index(built.index).tobytes()


SHARD_FROM = 262_144  # binary codes from which one query's Hamming scan is split across threads
MAX_SHARDS = 4


def scanned(index: Any) -> list[Any]:
    """The flat binary indexes a search scans: the shards, or the index itself."""
    if isinstance(index, faiss.IndexBinaryShards):
        shards: Any = index  # (faiss's type stubs leave out at() and count())
        return [faiss.downcast_IndexBinary(shards.at(i)) for i in range(shards.count())]
    return [index]


def _unsharded(index: Any) -> Any:
    """One flat binary index with every code (what is saved), from shards or as it is."""
    if not isinstance(index, faiss.IndexBinaryShards):
        return index
    flat = faiss.IndexBinaryFlat(index.d)
    for one in scanned(index):
        flat.add(_codes(one))
    return flat


def _codes(flat: Any) -> np.ndarray:
    """A flat binary index's codes [n, code_size], as a view of its own memory (valid while it lives)."""
    return faiss.rev_swig_ptr(flat.xb.data(), flat.ntotal * flat.code_size).reshape(flat.ntotal, flat.code_size)


def read(kind: str, path: str | Path, params: dict[str, Any], bytes_per_vector: float) -> Built:
    """An index saved by `serialize`, read by faiss straight from its file (one copy, as `faiss.read_index`
    does: going through a bytes object first costs a second copy and a resize as large as the index).
    Its sizes are checked beforehand (blob_check): faiss allocates what a file's headers say."""
    if kind == "binary":
        index = _read_sharded(path)
        if index is None:
            index = faiss.read_index_binary(str(path))
    else:
        index = faiss.read_index(str(path))
    return Built(kind, index, dict(params), bytes_per_vector)


BINARY_CODES_AT = 4 + BINARY_HEADER.size + 8  # a flat binary file: "IBxF", its header, the codes' size


def _read_sharded(path: str | Path) -> Any:
    """A large flat binary index as shards scanned side by side: faiss scans one query's codes on one thread
    (1M x 48 B: 2.9 ms; in two shards on 2 cores 2.3 ms, the same distances). The file is read straight into
    the shards' own storage: reading it whole first, then moving the codes into shards, copies them once
    more (27 ms of a 60 ms open at 1M here). None when it is not to be sharded (faiss reads it then). The
    file's header and size were checked before (blob_check)."""
    with open(path, "rb", buffering=0) as fh:
        head = fh.read(BINARY_CODES_AT)
        if len(head) != BINARY_CODES_AT or head[:4] != b"IBxF":
            return None
        d, code_size, ntotal, _trained, _metric = BINARY_HEADER.unpack(head[4:4 + BINARY_HEADER.size])
        ways = min(faiss.omp_get_max_threads(), MAX_SHARDS)
        if ntotal < SHARD_FROM or ways < 2:
            return None
        shards: Any = faiss.IndexBinaryShards(d, True)
        shards.successive_ids = True
        base, extra = divmod(ntotal, ways)
        for rows in (base + (i < extra) for i in range(ways)):  # (np.array_split's sizes)
            one: Any = faiss.IndexBinaryFlat(d)
            one.xb.resize(rows * code_size)
            view = faiss.rev_swig_ptr(one.xb.data(), rows * code_size).data
            got = 0
            while got < len(view):
                step = fh.readinto(view[got:])
                if not step:
                    raise ClensError(f"{path}: the file ends inside its codes")
                got += step
            one.ntotal = rows
            shards.add_shard(one)
    return shards
