"""`clens eval` and `clens diagnose` memory at 100k items per modality pair (goal: within 1 GB).

A fresh process builds a paired gallery embedding of 100k images and 100k texts (512-d, each text a noisy
copy of its image's vector), then runs the retrieval evaluation (ranks of every partner, both directions,
a block of queries at a time) and the geometry diagnostics. Peak resident memory (ru_maxrss) is reported
for the whole process and beyond the embedding itself.

    .venv/bin/python benchmarks/bench_eval.py [--n 100000] [--dim 512]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).parent / "results"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    import sklearn.linear_model  # noqa: F401 - loaded by diagnose anyway: counted in the baseline, not the measure
    import torch  # noqa: F401
    from resident import rss_bytes

    from cl_core.analysis.diagnostics import diagnose
    from cl_core.analysis.evaluation import paired_report
    from cl_core.embed.gallery import Gallery, GalleryEmbedding, Row
    from cl_core.modality import Modality

    imports = rss_bytes() / 2**20
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    vectors = np.empty((2 * a.n, a.dim), np.float32)
    for s in range(0, a.n, 50_000):
        m = min(50_000, a.n - s)
        x = rng.standard_normal((m, a.dim)).astype(np.float32)
        y = x + 0.8 * rng.standard_normal((m, a.dim)).astype(np.float32)
        vectors[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        vectors[a.n + s:a.n + s + m] = y / np.linalg.norm(y, axis=1, keepdims=True)
    rows = [Row(i, f"s{i}", f"img{i}", Modality.IMAGE) for i in range(a.n)] + \
        [Row(a.n + i, f"s{i}", f"txt{i}", Modality.TEXT) for i in range(a.n)]
    emb = GalleryEmbedding(Gallery("bench", "bench", []), "fp", rows, vectors)
    base = rss_bytes() / 2**20
    t = time.perf_counter()
    report = paired_report(emb)
    eval_s = time.perf_counter() - t
    eval_peak = peak_mb()
    t = time.perf_counter()
    diagnose(emb, k=10)
    diag_s = time.perf_counter() - t
    out = {"n_per_modality": a.n, "dim": a.dim, "interpreter_and_libraries_mb": round(imports, 1),
           "vectors_mb": round(vectors.nbytes / 2**20, 1), "embedding_mb": round(base, 1),
           "eval_s": round(eval_s, 1), "eval_peak_mb": round(eval_peak, 1),
           "eval_beyond_embedding_mb": round(eval_peak - base, 1),
           "diagnose_s": round(diag_s, 1), "peak_mb": round(peak_mb(), 1),
           "R@1 image->text": report.get("image->text", {}).get("R@1")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "eval.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
