"""Search on real vectors: every index kind over all-MiniLM-L6-v2 embeddings of real sentences (see
real_corpus.py), queried with held-out sentences that are not in the gallery.

For each kind, the index folder is built and saved by the app's own code, then opened in a fresh process
that measures, cold (the folder's pages dropped from the page cache first):
- recall@10 of `search()` against exact search, on the held-out queries;
- end-to-end `search()` time per query against the same index searched by faiss directly (and against flat);
- opening the folder against reading its faiss files plainly (`faiss.read_index`);
- resident memory after the queries: the growth of the process's own memory (RssAnon) since before the
  open, plus the index files' pages in the page cache (mincore; mapped pages are counted there once, not
  again in RSS), against the float32 vectors' own size. VmRSS growth is recorded too.
At 1M (`--synthetic 1000000`) the vectors are drawn from a Gaussian with the real vectors' mean and
covariance (their spectrum), normalised, and queries likewise; the figures say so.

    .venv/bin/python benchmarks/bench_real.py [--n 50000] [--queries 1000] [--kinds flat hnsw ivfpq binary]
                                              [--synthetic 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).parent / "results"


def build(kind: str, vectors: np.ndarray, folder: Path) -> dict:
    from cl_core.embed.gallery import Row
    from cl_core.modality import Modality
    from cl_core.search import store

    rows = [Row(i, f"s{i}", f"sentence {i}", Modality.TEXT, None, None) for i in range(len(vectors))]
    t = time.perf_counter()
    index = store.build_index_set(rows, vectors, {"fingerprint": "bench", "name": "all-MiniLM-L6-v2"},
                                  {"name": "bench"}, kind)
    built_s = time.perf_counter() - t
    store.save(index, folder)
    part = next(iter(index.parts.values()))
    b = part.built
    codes = {"ivfpq": lambda: b.index.code_size,  # bytes per vector of the codes the index holds in memory
             "binary": lambda: b.index.code_size + (b.pq.code_size if b.pq is not None else 0)}.get(kind)
    return {"build_s": round(built_s, 1), "reported_agreement": part.recall_at_10, "params": b.params,
            **({"code_bytes": int(codes())} if codes else {})}


OPEN_REPEATS = 15  # (cold opens of a few ms vary run to run on a VM disk: five were too few)
STARTED = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())  # this invocation's rows share it


def child(folder: Path, queries_path: Path, truth_path: Path) -> dict:
    """Runs in a fresh process: open cold (file digests from the cache's memo, as the app opens an index it
    has opened before), query, measure; then the first-open figure, which hashes every file."""
    import faiss
    from resident import cached_bytes, drop_cached, rss_bytes

    from cl_core.embed.cache import EmbeddingCache
    from cl_core.modality import Modality
    from cl_core.search import kinds, store
    from cl_core.search.query import search

    q = np.load(queries_path)
    truth = np.load(truth_path)
    files = [p for p in folder.iterdir() if p.is_file()]
    for p in files:
        drop_cached(p)
    cache = EmbeddingCache(folder.parent / "cache")
    base, base_anon = rss_bytes(), rss_bytes("RssAnon")
    index = store.load(folder, memo=cache)  # (timed below, with faiss, several times)
    part = index.parts[Modality.TEXT]
    found, e2e = [], []
    for row in q:
        t = time.perf_counter()
        hits = search(index, row[None], Modality.TEXT, k=10)
        e2e.append(time.perf_counter() - t)
        found.append([h.row for h in hits] + [-1] * (10 - len(hits)))
    after, after_anon = rss_bytes(), rss_bytes("RssAnon")
    resident = sum(cached_bytes(p) for p in files)
    # speed, like for like: the first pass above met the files cold (its pages were dropped, to measure what an
    # open index keeps); here both run warm, interleaved query by query, the order alternating, so neither side
    # gets the other's page faults or cache warmth
    rerank = index.rerank(part)
    e2e_warm, raw = [], []
    for i, row in enumerate(q):
        for side in ((0, 1) if i % 2 else (1, 0)):
            t = time.perf_counter()
            if side == 0:
                search(index, row[None], Modality.TEXT, k=10)
                e2e_warm.append(time.perf_counter() - t)
            else:
                kinds.search(part.built, row[None], 10, rerank)
                raw.append(time.perf_counter() - t)
    parts = parts_of_search(index, q)
    faiss_files = [folder / p["file"] for p in index.manifest["parts"] if p.get("file", "").endswith(".faiss")]
    held = [folder / n for n in index.manifest["files"] if n.endswith(store.BLOB_SUFFIXES) and not n.endswith(".faiss")]
    read = faiss.read_index_binary if part.built.kind == "binary" else faiss.read_index

    def plain(also: list[Path]) -> None:  # the faiss files (and `also`'s arrays) loaded plainly
        for f in faiss_files:
            read(str(f))
        for f in also:
            np.load(f, allow_pickle=False)

    # opening, cold each time, interleaved and repeated (a VM disk's cold reads vary run to run): the app's
    # reopen (digests memoised), faiss's files plainly, and everything the index holds plainly (faiss + arrays)
    opens: dict[str, list[float]] = {"ours": [], "faiss": [], "all": []}
    for _ in range(OPEN_REPEATS):
        for how, fn in (("ours", lambda: store.load(folder, memo=cache)),
                        ("faiss", lambda: plain([])), ("all", lambda: plain(held))):
            for p in files:
                drop_cached(p)
            t = time.perf_counter()
            fn()
            opens[how].append(time.perf_counter() - t)
    open_s, plain_open_s, plain_all_open_s = (float(np.median(opens[k])) for k in ("ours", "faiss", "all"))
    for p in files:
        drop_cached(p)
    t = time.perf_counter()
    store.load(folder)
    first_open_s = time.perf_counter() - t
    n, d = index.vectors.shape
    return {"recall_at_10": round(kinds.recall_at(np.array(found), truth), 4),
            "search_ms": round(1e3 * float(np.median(e2e_warm)), 3), "faiss_ms": round(1e3 * float(np.median(raw)), 3),
            "first_pass_search_ms": round(1e3 * float(np.median(e2e)), 3),
            "open_s": round(open_s, 4), "plain_faiss_open_s": round(plain_open_s, 4),
            "plain_all_open_s": round(plain_all_open_s, 4),
            "open_vs_faiss": round(open_s / plain_open_s, 2), "open_vs_all": round(open_s / plain_all_open_s, 2),
            "first_open_s": round(first_open_s, 3),
            "rss_growth_mb": round((after - base) / 2**20, 1), "anon_growth_mb": round((after_anon - base_anon) / 2**20, 1),
            "page_cache_mb": round(resident / 2**20, 1),
            "resident_bytes_per_vector": round((after_anon - base_anon + resident) / n, 1),
            "float32_bytes_per_vector": 4 * d,
            "queries": len(q), "search_parts_us": parts}


def parts_of_search(index, q: np.ndarray) -> dict[str, float]:
    """Where `search()`'s time goes, per query (medians over the queries, µs, warm): its faiss search (with
    the re-ranking), the query's score statistics, reading and decoding the rows shown, and the rest
    (fusing, relevance, ranking, building the hits). Timed by wrapping those three calls (~1 µs each)."""
    from cl_core.modality import Modality
    from cl_core.search import query, relevance

    spent: dict[str, list[float]] = {"faiss": [], "statistics": [], "rows": []}

    def timed(f, key):
        def run(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                spent[key][-1] += time.perf_counter() - t
        return run

    real_stat = relevance.query_stat
    index.search_part = timed(index.search_part, "faiss")
    index.records = timed(index.records, "rows")
    relevance.query_stat = timed(real_stat, "statistics")
    total = []
    try:
        for row in q:
            for v in spent.values():
                v.append(0.0)
            t = time.perf_counter()
            query.search(index, row[None], Modality.TEXT, k=10)
            total.append(time.perf_counter() - t)
    finally:
        relevance.query_stat = real_stat
        del index.search_part, index.records
    rest = np.array(total) - sum(np.array(v) for v in spent.values())
    return {**{k: round(1e6 * float(np.median(v)), 1) for k, v in spent.items()},
            "rest": round(1e6 * float(np.median(rest)), 1), "total": round(1e6 * float(np.median(total)), 1)}


def run(label: str, gallery: np.ndarray, queries: np.ndarray, kinds_: list[str], work: Path) -> dict:
    from cl_core.search import kinds

    print(f"\n== {label}: {len(gallery):,} x {gallery.shape[1]}, {len(queries):,} held-out queries ==", flush=True)
    truth = kinds.exact_topk(queries, gallery, 10)
    np.save(work / "q.npy", queries)
    np.save(work / "truth.npy", truth)
    out: dict = {"label": label, "n": len(gallery), "dim": int(gallery.shape[1]), "kinds": {}}
    for kind in kinds_:
        folder = work / f"ix-{kind}"
        info = build(kind, gallery, folder)
        from cl_core.embed.cache import EmbeddingCache
        from cl_core.search import store

        memo = EmbeddingCache(work / "cache")  # the app's memo of file digests, filled by a first open
        store.load(folder, memo=memo)
        memo.close()
        got = subprocess.run([sys.executable, __file__, "--child", str(folder), str(work / "q.npy"),
                              str(work / "truth.npy")], capture_output=True, text=True, check=True)
        info.update(json.loads(got.stdout.strip().splitlines()[-1]))
        info["measured"] = STARTED  # (--merge keeps rows of other runs)
        out["kinds"][kind] = info
        print(f"{kind:<7} recall@10 {info['recall_at_10']:.3f} (build reported {info['reported_agreement']})  "
              f"search {info['search_ms']:.2f} ms (faiss {info['faiss_ms']:.2f})  open {info['open_s']:.2f} s "
              f"(plain faiss {info['plain_faiss_open_s']:.2f}, first open {info['first_open_s']:.2f})  resident {info['resident_bytes_per_vector']:.0f} B/vector "
              f"(own memory +{info['anon_growth_mb']} MB, page cache {info['page_cache_mb']} MB; float32 "
              f"{info['float32_bytes_per_vector']} B)", flush=True)
    return versus_flat(out)


def versus_flat(out: dict) -> dict:
    """Each kind's speed and resident memory against flat's in the same run, and search() against faiss."""
    flat = out["kinds"].get("flat")
    for info in out["kinds"].values():
        if flat:
            info["speed_vs_flat"] = round(flat["search_ms"] / info["search_ms"], 2)
            info["memory_vs_flat"] = round(flat["resident_bytes_per_vector"] / info["resident_bytes_per_vector"], 2)
        info["search_vs_faiss"] = round(info["search_ms"] / info["faiss_ms"], 2)
    return out


def spectrum_matched(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Unit vectors drawn from a Gaussian with the real vectors' mean and covariance."""
    rng = np.random.default_rng(seed)
    mean = real.mean(axis=0)
    vals, vecs = np.linalg.eigh(np.cov(real, rowvar=False))
    scale = vecs * np.sqrt(np.clip(vals, 0, None))
    out = np.empty((n, real.shape[1]), np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        x = mean + rng.standard_normal((m, real.shape[1])) @ scale.T
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def demo_vectors(name: str, gallery: str, query: str, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """A demo world's held-out gallery embedded by its bundled model: one modality's vectors as the gallery,
    another's as queries (real cross-modal queries, none of them in the gallery)."""
    from cl_core import actions
    from cl_core.demo.galleries import DEMOS, demo_manifest
    from cl_core.modality import Modality

    model = actions.open_model(DEMOS[name].model).model
    index = actions.build_index(model, demo_manifest(name, folder=work / f"{name}-gallery"), work / f"{name}-ix",
                                cache=actions.EmbeddingCache(work / "demo-cache")).index
    assert index is not None
    g, q = index.parts[Modality(gallery)], index.parts[Modality(query)]
    return (np.ascontiguousarray(index.vectors[g.start:g.end], np.float32),
            np.ascontiguousarray(index.vectors[q.start:q.end], np.float32))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfpq", "binary"])
    ap.add_argument("--synthetic", type=int, default=0, help="also this many spectrum-matched vectors")
    ap.add_argument("--child", nargs=3, default=None)
    ap.add_argument("--keep-synthetic", action="store_true",
                    help="keep the spectrum-matched run of the last results (when not measured again)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the last results' figures for the kinds not measured this time (same runs)")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(Path(a.child[0]), Path(a.child[1]), Path(a.child[2]))))
        return
    import real_corpus

    gallery, queries, _, _ = real_corpus.load(a.n, a.queries)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "model": "all-MiniLM-L6-v2 (384-d)",
              "corpus": "sentences from installed packages' docstrings and docs; queries held out", "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        report["runs"].append(run("real sentences", gallery, queries, a.kinds, Path(tmp)))
        for name, g, qm in (("shapes_sounds", "image", "text"), ("tissue", "multichannel", "text")):
            dg, dq = demo_vectors(name, g, qm, Path(tmp))
            report["runs"].append(run(f"demo {name}: {g} items queried by {qm}", dg, dq, a.kinds, Path(tmp)))
        if a.synthetic:
            big = spectrum_matched(gallery, a.synthetic, 1)
            q = spectrum_matched(gallery, a.queries, 2)
            report["runs"].append(run("spectrum-matched synthetic", big, q,
                                      [k for k in a.kinds if k != "hnsw"], Path(tmp)))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "real_search.json"
    if a.keep_synthetic and not a.synthetic and out.is_file():
        report["runs"] += [r for r in json.loads(out.read_text())["runs"] if r["label"] == "spectrum-matched synthetic"]
    if a.merge and out.is_file():  # a partial rerun: the other kinds' rows stay as last measured
        before = {r["label"]: r for r in json.loads(out.read_text())["runs"]}
        for r in report["runs"]:
            old = before.get(r["label"], {}).get("kinds", {})
            r["kinds"] = {k: r["kinds"].get(k, old.get(k)) for k in dict.fromkeys([*old, *r["kinds"]])}
            versus_flat(r)
    out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
