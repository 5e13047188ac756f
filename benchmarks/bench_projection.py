"""Projection figures: PCA of 1M x 512, UMAP and openTSNE of 100k, and the map panel's pan/zoom frame time at
1M points (Qt offscreen: the range change handled and the widget painted, as a frame on screen would be).

Vectors: unit vectors drawn around 64 cluster centres (synthetic; the bundled demo galleries have 900 points,
too few to measure scale). Each figure says what it measured. Writes benchmarks/results/projection.json.
Run alone (`python benchmarks/bench_projection.py [--quick]`); `--quick` skips UMAP and t-SNE.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "projection.json"


def clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, d)).astype(np.float32)
    x = centres[rng.integers(0, 64, n)] * 0.6
    x += rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_during(fn):  # noqa: ANN001, ANN201 - (result, highest RSS growth in MB seen while fn ran, sampled every 5 ms)
    import threading

    base, peak, done = rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], rss_mb() - base)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = fn()
    finally:
        done.set()
        sampler.join()
    return result, round(peak[0], 1)


def fit(method: str, x: np.ndarray) -> float:
    from cl_core.analysis.projection import project

    start = time.perf_counter()
    project(x, method)
    return round(time.perf_counter() - start, 2)


def frame_times(coords: np.ndarray) -> dict[str, float]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("CLENS_CACHE_DIR", tempfile.mkdtemp(prefix="clens-bench-"))
    from PySide6.QtWidgets import QApplication

    from cl_core.analysis.projection import Projected, Projection
    from cl_core.modality import Modality
    from cl_core.session import Session
    from clens_app.jobs import Jobs
    from clens_app.qt_projection_panel import ProjectionPanel

    app = QApplication.instance() or QApplication(sys.argv[:1])

    class Row:  # what the panel reads of an index row
        def __init__(self, i: int) -> None:
            self.modality, self.label, self.sample_id = (Modality.IMAGE, Modality.TEXT)[i % 2], None, f"s{i}"
            self.source, self.text = f"item{i}", None

    class Index:
        rows = [Row(i) for i in range(len(coords))]

    session = Session()
    session.index = Index()  # type: ignore[assignment]
    jobs = Jobs(session)
    panel = ProjectionPanel(session, jobs)
    panel.resize(1000, 700)
    panel.show()
    session.projection = Projected(Projection("pca", {}, coords), "", "")
    panel.redraw()
    app.processEvents()
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    out = {}
    for name, scale in (("zoomed out (density image)", 1.0), ("zoomed in (points)", 0.01)):
        times = []
        for k in range(40):
            cx = lo[0] + (hi[0] - lo[0]) * (0.3 + 0.4 * k / 40)
            cy = lo[1] + (hi[1] - lo[1]) * 0.5
            w, h = (hi - lo) * scale
            start = time.perf_counter()
            panel.view.setRange(xRange=(cx - w / 2, cx + w / 2), yRange=(cy - h / 2, cy + h / 2), padding=0)
            app.processEvents()
            panel.plot.grab()  # paint, as the screen would
            times.append((time.perf_counter() - start) * 1000)
        out[name] = {"median_ms": round(statistics.median(times), 1),
                     "p95_ms": round(sorted(times)[int(0.95 * len(times)) - 1], 1),
                     "points_in_view": int(len(panel.visible_rows()))}
    jobs.shutdown()
    panel.close()
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    result: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                    "vectors": "unit vectors around 64 cluster centres (synthetic)"}
    if "--umap" in sys.argv:  # only the UMAP figures (the rest of the file is kept)
        result.update(umap_figures())
        save(result)
        return
    big = clustered(1_000_000, 512)
    result["pca_1M_x_512_s"], result["pca_1M_rss_growth_mb"] = peak_during(functools.partial(fit, "pca", big))
    result["pca_1M_vectors_mb"] = round(big.nbytes / 2**20, 1)
    from cl_core.analysis.projection import project

    coords = np.asarray(project(big, "pca").coords)
    del big
    result["pan_zoom_1M"] = frame_times(coords)
    if not quick:
        result.update(umap_figures())
        result["tsne_100k_x_512_s"] = fit("tsne", clustered(100_000, 512, seed=1))
    save(result)


FRESH = r"""
import sys, time
t = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from bench_projection import clustered, fit
x = clustered(100_000, 512, seed=1)
t = time.perf_counter()
fit("umap", x)
print(round(time.perf_counter() - t, 2))
"""


def umap_figures() -> dict[str, float]:
    """UMAP's first call in a process (6k points: every numba function it uses is compiled or loaded from
    the disk cache), 100k in that process, then 100k in a new process whose compiled code comes from numba's
    disk cache: the first UMAP a person asks for after a restart. Then how well UMAP's faiss neighbour graph
    agrees with exact search, on the 100k synthetic vectors and on real sentence vectors."""
    out: dict = {"umap_first_call_6k_s": fit("umap", clustered(6_000, 512, seed=2)),
                 "umap_100k_x_512_s": fit("umap", clustered(100_000, 512, seed=1))}
    import subprocess

    run = subprocess.run([sys.executable, "-c", FRESH, str(Path(__file__).parent)], capture_output=True, text=True,
                         timeout=900, check=True)
    out["umap_100k_new_process_s"] = float(run.stdout.strip().splitlines()[-1])
    out["umap_knn"] = {"100k x 512 synthetic": knn_agreement(clustered(100_000, 512, seed=1))}
    try:
        import real_corpus

        out["umap_knn"]["50k x 384 real sentences"] = knn_agreement(real_corpus.load()[0])
    except Exception as exc:  # noqa: BLE001 - the corpus needs its model package; say why it is missing
        print(f"real-vector neighbour figure skipped: {exc}", file=sys.stderr)
    return out


def knn_agreement(x: np.ndarray, k: int = 15) -> dict:
    """UMAP's neighbour graph (faiss) against exact search over every row: the share of neighbours found."""
    import faiss

    from cl_core.analysis.umap_knn import knn_graph
    from cl_core.task import TaskState

    start = time.perf_counter()
    found, _, said = knn_graph(x, k, TaskState())
    seconds = time.perf_counter() - start
    exact = faiss.IndexFlatL2(x.shape[1])
    exact.add(np.ascontiguousarray(x, np.float32))
    _, truth = exact.search(np.ascontiguousarray(x, np.float32), k)
    agree = float(np.mean([len(set(a) & set(b)) for a, b in zip(found, truth, strict=True)]) / k)
    return {"seconds": round(seconds, 2), "agreement_all_rows": round(agree, 4), "agreement_sampled": round(said, 4)}


def save(result: dict) -> None:
    OUT.parent.mkdir(exist_ok=True)
    previous = json.loads(OUT.read_text()) if OUT.is_file() else {}
    previous.pop("umap_first_call_2k_s", None)  # measured with too few points to reach NN-descent
    OUT.write_text(json.dumps({**previous, **result}, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
