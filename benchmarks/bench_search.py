"""Search benchmark: every index kind against exact search on clustered unit vectors.

Measures, for 100k and 1M x 512 (by default): build time, resident memory per vector, single-query and
batched latency, and recall@10 against exact inner-product search. The search knob of each ANN kind is
tuned on separate queries with the app's own tuner (cl_core.search.kinds.tune), then measured on fresh ones.
Goals (issue 4): an ANN kind at recall@10 >= 0.95 at least 10x faster than exact; binary + re-rank with
>= 8x less memory than float32 at recall@10 >= 0.95.

    .venv/bin/python benchmarks/bench_search.py [--sizes 100000 1000000] [--dim 512]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cl_core.search import kinds  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def clustered(n: int, dim: int, clusters: int, seed: int, spread: float = 1.0) -> np.ndarray:
    """Unit vectors around `clusters` random centres: neighbours are many and close, as in real galleries."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = centres[rng.integers(0, clusters, m)] + spread * rng.standard_normal((m, dim)).astype(np.float32) / np.sqrt(dim)
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def timed(fn, repeat: int = 1) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench(n: int, dim: int, kinds_: list[str], seed: int = 0) -> dict:
    print(f"\n== {n:,} x {dim} clustered vectors ==", flush=True)
    x = clustered(n, dim, clusters=max(100, n // 1000), seed=seed)
    q_all = clustered(1200, dim, clusters=max(100, n // 1000), seed=seed)  # same centres (same seed), new points
    q_tune, q_eval = q_all[:200], q_all[200:]
    truth_tune = kinds.exact_topk(q_tune, x, 10)
    truth_eval = kinds.exact_topk(q_eval, x, 10)
    rerank = kinds.exact_rerank(x)
    out = {"n": n, "dim": dim, "kinds": {}}
    exact_single = None
    for kind in kinds_:
        t = time.perf_counter()
        built = kinds.build(kind, x, seed)
        build_s = time.perf_counter() - t
        kinds.tune(built, q_tune, truth_tune, 10, rerank)
        found = kinds.search(built, q_eval, 10, rerank)[1]
        recall = kinds.recall_at(found, truth_eval)
        single = timed(lambda b=built: [kinds.search(b, q_eval[i:i + 1], 10, rerank) for i in range(100)]) / 100
        batched = timed(lambda b=built: kinds.search(b, q_eval, 10, rerank)) / len(q_eval)
        if kind == "flat":
            exact_single = single
        row = {"build_s": round(build_s, 2), "recall_at_10": round(recall, 4), "single_query_ms": round(single * 1e3, 3),
               "batched_ms_per_query": round(batched * 1e3, 4), "bytes_per_vector": round(built.bytes_per_vector, 1),
               "memory_vs_float32": round(4.0 * dim / built.bytes_per_vector, 1), "params": built.params}
        if exact_single:
            row["speedup_vs_exact"] = round(exact_single / single, 1)
        out["kinds"][kind] = row
        print(f"{kind:<7} recall@10 {recall:.4f}  single {single * 1e3:8.3f} ms  batched {batched * 1e3:7.4f} ms/q  "
              f"{built.bytes_per_vector:7.1f} B/vector  build {build_s:7.1f} s  {built.params}", flush=True)
        del built
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfpq", "binary"])
    args = ap.parse_args()
    import faiss

    runs = [bench(n, args.dim, args.kinds) for n in args.sizes]
    RESULTS.mkdir(exist_ok=True)
    record = {"benchmark": "search", "machine": f"{platform.processor() or platform.machine()}, "
              f"{faiss.omp_get_max_threads()} threads", "faiss": faiss.__version__, "runs": runs}
    (RESULTS / "search.json").write_text(json.dumps(record, indent=2))
    print(f"\nwrote {RESULTS / 'search.json'}")


if __name__ == "__main__":
    main()
