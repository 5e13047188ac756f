"""The results grid with 1,000 image results (Qt offscreen): a gallery of 1,000 photos-like PNGs (512², drawn
shapes on noise) searched with k = 1,000; measured:
- thumbnails drawn the first time (decoder processes, cached on disk by content) and again on reopening
  (a new window: read from the disk cache);
- scrolling the grid from top to bottom one step (three rows) at a time: each frame is the scroll applied and
  the viewport painted synchronously (`repaint`), first pass (icons decoded on first paint) and second pass.
Writes benchmarks/results/thumbs.json. Heavy imports stay inside functions (decoder processes re-import this file).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "thumbs.json"
ROOT = Path(__file__).resolve().parent.parent
N = 1000


def make_photos(folder: Path, n: int) -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)
        picture = Image.fromarray(base)
        draw = ImageDraw.Draw(picture)
        x, y, r = (int(v) for v in rng.integers(80, 430, 3))
        draw.ellipse((x - r // 3, y - r // 3, x + r // 3, y + r // 3), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        picture.save(folder / f"photo{i:04d}.png")


def frames(panel, app) -> list[float]:  # noqa: ANN001 - Qt objects
    bar = panel.grid.verticalScrollBar()
    bar.setValue(0)
    app.processEvents()
    out = []
    step = max(1, bar.singleStep() * 3)  # one mouse-wheel notch scrolls three single steps
    for value in range(0, bar.maximum() + step, step):
        t = time.perf_counter()
        bar.setValue(min(value, bar.maximum()))
        panel.grid.viewport().repaint()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from cl_core import actions
    from cl_core.modality import Modality
    from cl_core.session import Session
    from clens_app.jobs import Jobs
    from clens_app.qt_search_panel import SearchPanel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    work = Path(tempfile.mkdtemp(prefix="clens-thumbs-"))
    make_photos(work / "photos", N)
    opened = actions.open_model(actions.demo_files("shapes_sounds").model)

    def window() -> tuple[Session, Jobs, SearchPanel]:
        session = Session()
        jobs = Jobs(session)
        jobs.settings.cache_dir = work / "cache"
        session.set_model(opened.model, opened.fingerprint)
        panel = SearchPanel(session, jobs)
        panel.resize(1100, 750)
        panel.show()
        return session, jobs, panel

    def wait(signal) -> None:  # noqa: ANN001
        loop = QEventLoop()
        quit_loop = lambda *_: loop.quit()  # noqa: E731 - one callable to connect and disconnect
        signal.connect(quit_loop)
        loop.exec()
        signal.disconnect(quit_loop)

    result: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "results": N,
                    "images": "512 × 512 PNG", "thumbnail px": 128}
    for attempt in ("first", "reopened"):
        session, jobs, panel = window()
        jobs.open_gallery(work / "photos")
        while session.index is None:
            wait(session.gallery_changed)
        query = actions.SearchRequest(files=(str(work / "photos" / "photo0000.png"),), target=Modality.IMAGE, k=N)
        t = time.perf_counter()
        jobs.search(query)
        wait(session.results_changed)
        shown = time.perf_counter()
        first_batch: list[float] = []

        def first(_part: object, got: list[float] = first_batch, since: float = shown) -> None:
            if not got:
                got.append(time.perf_counter() - since)

        jobs.thumbnails_ready.connect(first)
        while jobs.busy:
            wait(jobs.job_done)
        result[f"first thumbnails shown {attempt} s"] = round(first_batch[0], 2)
        result[f"thumbnails {attempt} s"] = round(time.perf_counter() - shown, 2)
        result[f"search to results shown {attempt} s"] = round(shown - t, 2)
        app.processEvents()
        assert len(session.results) == N and panel.grid.count() == N
        for n, name in enumerate(("scroll first pass", "scroll second pass")):
            f = frames(panel, app)
            result[f"{name} {attempt}"] = {"frames": len(f), "median ms": round(statistics.median(f), 1),
                                           "p95 ms": round(sorted(f)[int(0.95 * (len(f) - 1))], 1),
                                           "max ms": round(max(f), 1)}
            if n == 0 and attempt == "reopened":
                break
        jobs.shutdown()
        panel.close()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
