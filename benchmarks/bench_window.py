"""The window as a person meets it (Qt offscreen):
- launch: from the interpreter starting to the window painted, to the demo model ready, and to the demo
  gallery searchable (the child process reports each moment; the clock starts before Python imports anything);
- heartbeat: a 10 ms timer on the UI thread while a gallery of ~10k items is embedded and then mapped (PCA): the
  longest gap between ticks is the longest the window could not respond (goal: never over 100 ms).
Writes benchmarks/results/window.json. Heavy imports stay inside functions (decoder processes re-import this file).
"""

from __future__ import annotations

import faulthandler
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "window.json"
ROOT = Path(__file__).resolve().parent.parent

LAUNCH = r"""
import sys, time
t0 = float(sys.argv[1])
from PySide6.QtWidgets import QApplication
from clens_app.main import run_app
from cl_core.cli.parser import build_parser
import PySide6.QtCore as qc
args = build_parser().parse_args(["gui"])
app = QApplication([])
marks = {}
def mark(name):
    marks.setdefault(name, time.time() - t0)
from clens_app import qt_main_window as mw
real_init = mw.MainWindow.__init__
def init(self, *a, **k):
    real_init(self, *a, **k)
    qc.QTimer.singleShot(0, lambda: mark("window painted"))
    self.session.model_changed.connect(lambda m: m is not None and mark("demo model ready"))
    self.session.gallery_changed.connect(lambda: self.session.index is not None and (mark("gallery searchable"),
                                                                                     print(json.dumps(marks)),
                                                                                     sys.stdout.flush(),
                                                                                     self.close(), app.quit()))
import json
mw.MainWindow.__init__ = init
run_app(args)
"""


def launch(cache: str, runs: int = 3) -> dict[str, float]:
    times: dict[str, list[float]] = {}
    for _ in range(runs):
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CLENS_CACHE_DIR": cache,
               "XDG_CONFIG_HOME": tempfile.mkdtemp()}
        out = subprocess.run([sys.executable, "-c", LAUNCH, repr(time.time())], env=env, capture_output=True,
                             text=True, timeout=600, cwd=ROOT)
        line = next(li for li in out.stdout.splitlines() if li.startswith("{"))
        for k, v in json.loads(line).items():
            times.setdefault(k, []).append(v)
    return {k: round(statistics.median(v), 2) for k, v in times.items()}


def heartbeat(n_samples: int = 3_334) -> dict[str, float]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT / "tests"))
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from cl_core import actions
    from cl_core.session import Session
    from clens_app.jobs import Jobs
    from media import make_gallery

    app = QApplication.instance() or QApplication(sys.argv[:1])
    work = Path(tempfile.mkdtemp(prefix="clens-heartbeat-"))
    gallery = make_gallery(work / "g", n=n_samples)
    session = Session()
    jobs = Jobs(session)
    jobs.settings.cache_dir = work / "cache"
    ready = QEventLoop()
    session.model_changed.connect(lambda _m: ready.quit())
    jobs.open_model(actions.demo_files("shapes_sounds").model)  # as the window does (the heap settled after)
    ready.exec()
    gaps: list[float] = []
    last = [time.perf_counter()]
    trace = os.environ.get("CLENS_STALL_TRACE")  # a file: every thread's stack whenever the UI misses 100 ms
    trace_file = open(trace, "w") if trace else None  # noqa: SIM115 - open for the whole run

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000)
        last[0] = now
        if trace_file is not None:  # faulthandler's watchdog is a C thread: it fires even while the GIL is held
            faulthandler.dump_traceback_later(0.1, file=trace_file)

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    loop = QEventLoop()
    stages: dict[str, float] = {}
    start = time.perf_counter()

    def gallery_ready() -> None:
        if session.index is not None:
            stages["embedded and indexed s"] = round(time.perf_counter() - start, 1)
            jobs.project("pca")

    def mapped() -> None:
        if session.projection is not None:
            stages["then mapped s"] = round(time.perf_counter() - start, 1)
            loop.quit()

    session.gallery_changed.connect(gallery_ready)
    session.projection_changed.connect(mapped)
    timer.start()
    last[0] = time.perf_counter()
    jobs.open_gallery(gallery / "manifest.csv")
    loop.exec()
    timer.stop()
    if trace_file is not None:
        faulthandler.cancel_dump_traceback_later()
        trace_file.close()
    jobs.shutdown()
    del app
    return {"items": len(session.index.rows) if session.index is not None else 0, **stages,
            "ticks": len(gaps), "longest gap ms": round(max(gaps), 1),
            "gaps over 100 ms": sum(g > 100 for g in gaps), "median gap ms": round(statistics.median(gaps), 1)}


def main() -> None:
    if "--heartbeat" in sys.argv:  # only the heartbeat (e.g. with CLENS_STALL_TRACE set, to find a stall)
        print(json.dumps(heartbeat(), indent=2))
        return
    cache = tempfile.mkdtemp(prefix="clens-launch-")
    first = launch(cache, runs=1)  # a new cache: the demo gallery is generated and embedded
    warm = launch(cache, runs=3)  # as a person reopening the app meets it
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "launch_first_s": first,
              "launch_s": warm, "heartbeat": heartbeat()}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
