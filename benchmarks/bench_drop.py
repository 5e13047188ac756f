"""From 'model ready' to 'the dropped image is shown', in the window's own controller (Qt offscreen).

Measured on the bundled shapes & sounds demo model and one demo PNG: the controller opens the model, and
the moment its model job has delivered (the Session says model_changed) the image is dropped; the clock
stops when the Session has the image's vector (items_changed). Three ways:
- `per-drop pool`: a decoder pool started for each drop (what the app did before one pool served the
  window's life): the drop pays for spawning decoder processes;
- `shared pool, drop at model ready`: the app now; the pool warms while the model loads;
- `shared pool, second drop`: a later drop, everything warm.
Median of several runs, each in a fresh controller. Writes benchmarks/results/drop.json.
Heavy imports sit inside the functions: decoder processes are spawned and re-import this file as their
main module, as they re-import the small `clens` script in the app.
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

RUNS = 5
OUT = Path(__file__).parent / "results" / "drop.json"


def wait_for(condition, timeout_s: float = 120.0) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish")
        QTimer.singleShot(2, loop.quit)
        loop.exec()


def one_run(image: Path, model_dir: Path, per_drop_pool: bool) -> dict[str, float]:
    from cl_core import actions
    from cl_core.embed.items import embed_paths
    from cl_core.session import Session
    from clens_app.jobs import Jobs

    session = Session()
    jobs = Jobs(session)
    ready: list[float] = []
    shown: list[float] = []
    session.model_changed.connect(lambda _m: ready.append(time.perf_counter()))
    session.items_changed.connect(lambda: session.items and shown.append(time.perf_counter()))
    if per_drop_pool:  # the earlier behaviour: each drop read its files through a new pool
        model_job = jobs.runner.submit("model", "load", lambda s: actions.open_model(model_dir, state=s),
                                       lambda got: session.set_model(got.model, got.fingerprint))
        wait_for(lambda: bool(ready))
        model = session.model
        jobs.runner.submit("embed", "drop", lambda s: embed_paths(model, [image], state=s), session.add_result)
        assert model_job is not None
    else:
        jobs.open_model(model_dir)
        wait_for(lambda: bool(ready))
        jobs.embed([image])
    wait_for(lambda: bool(shown))
    first = shown[0] - ready[0]
    second = float("nan")
    if not per_drop_pool:
        wait_for(lambda: not jobs.busy)
        start = time.perf_counter()
        n = len(shown)
        jobs.embed([image])
        wait_for(lambda: len(shown) > n)
        second = shown[-1] - start
    wait_for(lambda: not jobs.busy)
    jobs.shutdown()
    return {"first": first, "second": second}


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("CLENS_CACHE_DIR", tempfile.mkdtemp(prefix="clens-bench-"))
    from PySide6.QtWidgets import QApplication

    from cl_core import actions

    app = QApplication.instance() or QApplication(sys.argv[:1])
    demo = actions.demo_files("shapes_sounds")
    image = next(p for p in demo.files if p.suffix == ".png")
    old = [one_run(image, demo.model, True)["first"] for _ in range(RUNS)]
    new = [one_run(image, demo.model, False) for _ in range(RUNS)]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "model": "bundled shapes & sounds demo", "image": image.name, "runs": RUNS,
        "per_drop_pool_s": round(statistics.median(old), 3),
        "shared_pool_at_model_ready_s": round(statistics.median(r["first"] for r in new), 3),
        "shared_pool_second_drop_s": round(statistics.median(r["second"] for r in new), 3),
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    del app


if __name__ == "__main__":
    main()
