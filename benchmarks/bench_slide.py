"""Whole-slide heatmaps with the bundled tissue model.

1. Separation: synthetic slides of held-out seeds (their patches drawn fresh; the texts in slide.STATE_TEXTS were
   chosen on a slide of seed 1), H&E and mIF; for each state, the heatmap of the state's text scores every tissue
   tile (glass left out by the ground-truth mask) and ROC AUC is taken of that state's tiles against all others.
2. Scale: a 20k x 20k x 6 uint16 mIF slide (pyramidal OME-TIFF) is written, then in a fresh process tiled,
   embedded (an empty cache: every tile, written to the cache as it goes), scored against a text and drawn over
   its overview; wall time and the process's peak resident memory (ru_maxrss) are measured; then the same again
   in another fresh process, from the cache (reopening).

    .venv/bin/python benchmarks/bench_slide.py [--size 19968] [--auc-size 4096] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).parent / "results"

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from cl_core.actions.slides import slide_heatmap, save_heat
from cl_core.embed.cache import EmbeddingCache
from cl_core.models.open import open_checkpoint
from cl_core.resources import RESOURCES
model = open_checkpoint(RESOURCES / "demo" / "tissue")
cache = EmbeddingCache(sys.argv[2]) if sys.argv[2] != "-" else None
t1 = time.perf_counter()
heat = slide_heatmap(model, sys.argv[1], ["tumour necrosis present"], cache=cache)
t2 = time.perf_counter()
save_heat(heat, sys.argv[3])
t3 = time.perf_counter()
print(json.dumps({"open_model_s": round(t1 - t0, 2), "tile_embed_score_s": round(t2 - t1, 1),
                  "overlay_s": round(t3 - t2, 2), "tiles": heat.embedding.rows * heat.embedding.cols,
                  "bands_from_cache": heat.embedding.from_cache, "failed": len(heat.embedding.failed),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def auc(model, files, seeds: list[int], size: int) -> dict:
    from sklearn.metrics import roc_auc_score

    from cl_core.actions.slides import embed_slide, heat_of, query_vector
    from cl_core.demo.worlds import slide as sl

    queries = {s: query_vector(model, [t]) for s, t in sl.STATE_TEXTS.items()}
    out: dict = {"he": {s: [] for s in sl.STATES}, "mif": {s: [] for s in sl.STATES}}
    for seed in seeds:
        made = files(seed)
        mask = np.load(made.mask)
        tissue = mask > 0
        for kind, path in (("he", made.he), ("mif", made.mif)):
            emb = embed_slide(model, path)
            for s, q in queries.items():
                truth = mask[tissue] == 1 + sl.STATES.index(s)
                out[kind][s].append(float(roc_auc_score(truth, heat_of(emb, q)[tissue])))
    return {kind: {s: round(float(np.mean(v)), 4) for s, v in per.items()} for kind, per in out.items()}


def main() -> None:
    from cl_core.demo.worlds import slide as sl
    from cl_core.models.open import open_checkpoint
    from cl_core.resources import RESOURCES

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=19968, help="the big slide's side in px (20k, whole 64-px tiles)")
    ap.add_argument("--auc-size", type=int, default=4096)
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    ap.add_argument("--keep", action="store_true", help="keep the big slide")
    a = ap.parse_args()
    model = open_checkpoint(RESOURCES / "demo" / "tissue")
    work = Path(tempfile.mkdtemp(prefix="clens-slide-"))
    out: dict = {"model": model.name, "texts": sl.STATE_TEXTS, "auc_slide_px": a.auc_size, "seeds": a.seeds}
    try:
        out["roc_auc"] = auc(model, lambda s: sl.make_slide(work / f"auc{s}", size=a.auc_size, seed=s), a.seeds,
                             a.auc_size)
        print(json.dumps(out["roc_auc"]), flush=True)
        t = time.perf_counter()
        big = sl.make_slide(work / "big", size=a.size, seed=11, kinds=("mif",))
        out["big"] = {"px": a.size, "channels": 6, "dtype": "uint16", "write_s": round(time.perf_counter() - t, 1),
                      "file_gb": round(big.mif.stat().st_size / 1e9, 2)}
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
        for name, cache in (("first (empty cache)", str(work / "cache")),
                            ("reopened (from the cache)", str(work / "cache"))):
            t = time.perf_counter()
            run = subprocess.run([sys.executable, "-c", CHILD, str(big.mif), cache, str(work / "heat.png")],
                                 capture_output=True, text=True, env=env, check=True)
            got = json.loads(run.stdout.strip().splitlines()[-1])
            got["process_s"] = round(time.perf_counter() - t, 1)
            out["big"][name] = got
            print(name, json.dumps(got), flush=True)
        out["machine"] = f"{os.cpu_count()} CPU threads, no GPU"
    finally:
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "slide.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
