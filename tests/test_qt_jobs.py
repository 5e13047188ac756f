"""Jobs with rules: newest of a kind wins, stale results are refused, cancel is per job, progress is throttled.

Slow jobs are held on threading Events the test releases, so the order of events is forced, not timed.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("PySide6")

from qt_helpers import wait_idle  # noqa: E402

from cl_core import actions  # noqa: E402
from cl_core.session import Session  # noqa: E402
from cl_core.task import TaskState  # noqa: E402
from clens_app.jobs import Jobs  # noqa: E402
from clens_app.qt_worker import JobRunner  # noqa: E402
from media import make_gallery  # noqa: E402


@pytest.fixture
def gallery_jobs(qtbot, controller, tmp_path):
    session, jobs = controller
    jobs.open_gallery(make_gallery(tmp_path / "g", n=6) / "manifest.csv")
    wait_idle(qtbot, jobs)
    assert session.index is not None
    return session, jobs


def _held_search(monkeypatch, gates: dict[str, threading.Event]):
    """actions.search, but a query text named in `gates` waits for its event first."""
    real = actions.search

    def search(model, index, request, state=None, pool=None):
        gate = gates.get(request.texts[0]) if request.texts else None
        if gate is not None:
            assert gate.wait(30)
        return real(model, index, request, None, pool)

    monkeypatch.setattr(actions, "search", search)


def test_newest_search_wins(qtbot, gallery_jobs, monkeypatch):
    session, jobs = gallery_jobs
    slow = threading.Event()
    _held_search(monkeypatch, {"caption number 1": slow})
    landed = []
    session.results_changed.connect(lambda: landed.append([h.text for h in session.results]))
    old = jobs.search(actions.SearchRequest(texts=("caption number 1",), target=None, k=3))
    new = jobs.search(actions.SearchRequest(texts=("caption number 4",), k=3))
    assert old is not None and new is not None and old.cancelled and not new.cancelled
    qtbot.waitUntil(lambda: bool(landed), timeout=30_000)  # the newer, unblocked one lands
    assert session.query is not None and session.query.texts == ("caption number 4",)
    slow.set()  # now the older one finishes: its result must never land
    wait_idle(qtbot, jobs)
    assert len(landed) == 1 and session.query.texts == ("caption number 4",)
    assert "caption number 4" in landed[0]


def test_a_result_for_the_old_model_is_refused(qtbot, gallery_jobs, monkeypatch, hf_clip):
    session, jobs = gallery_jobs
    old_fp = session.model_fingerprint
    gate = threading.Event()
    _held_search(monkeypatch, {"caption number 2": gate})
    jobs.search(actions.SearchRequest(texts=("caption number 2",)))
    jobs.open_model(hf_clip[0])  # a model switch while the search runs
    # the gallery is reopened with the new model before the old search answers
    qtbot.waitUntil(lambda: session.index is not None and session.model_fingerprint != old_fp, timeout=60_000)
    landed = []
    session.results_changed.connect(lambda: landed.append(session.results))
    gate.set()
    wait_idle(qtbot, jobs)
    assert landed == [] and session.query is None  # the old model's answer never landed
    # and the Session refuses it directly too
    result = actions.SearchResult(actions.SearchRequest(texts=("x",)), [], [], [], "another-model", "g")
    assert not session.set_results(result)


def test_model_switch_keeps_the_gallery_and_the_items(qtbot, gallery_jobs, native_dir, media_dir):
    session, jobs = gallery_jobs
    jobs.embed([media_dir / "red.png"], ["a cat"])
    wait_idle(qtbot, jobs)
    source = session.gallery_source
    statuses: list[str] = []
    jobs.status.connect(statuses.append)
    jobs.open_model(native_dir)
    wait_idle(qtbot, jobs)
    assert session.gallery_source == source and session.index is not None  # reopened (through the cache)
    assert session.gallery is not None and session.gallery.from_cache == len(session.gallery.rows)
    assert [it.modality.value for it in session.items] == ["image", "text"]
    ready = [s for s in statuses if "ready" in s]
    assert len(ready) == 1 and "embedding again: 2 item(s) and the gallery" in ready[0]


def test_cancelling_one_job_leaves_the_others_running(qtbot):
    runner = JobRunner()
    gates = [threading.Event(), threading.Event()]
    outcomes: list[str] = []

    def held(i: int):
        def run(state: TaskState) -> int:
            while not gates[i].wait(0.01):
                state.check_cancelled()
            return i
        return run

    first = runner.submit("embed", "first", held(0), lambda r: outcomes.append(f"done {r}"))
    second = runner.submit("gallery", "second", held(1), lambda r: outcomes.append(f"done {r}"))
    first.signals.cancelled.connect(lambda: outcomes.append("cancelled 0"))
    with qtbot.waitSignal(first.signals.done, timeout=30_000):
        runner.cancel(first.id)
    assert outcomes == ["cancelled 0"] and [j.id for j in runner.active] == [second.id]
    with qtbot.waitSignal(second.signals.done, timeout=30_000):
        gates[1].set()
    assert outcomes == ["cancelled 0", "done 1"] and not runner.active
    assert runner.shutdown()


def test_progress_is_throttled(qtbot):
    runner = JobRunner()
    seen: list[tuple[int, int]] = []
    runner.progress.connect(lambda payload: seen.append((payload[1].done, payload[1].total)))

    def busy(state: TaskState) -> None:
        for i in range(1, 20_001):  # far faster than 10 a second
            state.set_progress(i, 20_000, "counting")

    job = runner.submit("embed", "busy", busy)
    with qtbot.waitSignal(job.signals.done, timeout=30_000):
        pass
    qtbot.waitUntil(lambda: bool(seen) and seen[-1] == (20_000, 20_000), timeout=10_000)  # the final one always
    elapsed = max(0.0, __import__("time").monotonic() - job.started)
    assert len(seen) <= 2 + int(elapsed * 10) + 1
    assert len(seen) < 100
    assert runner.shutdown()


def test_throttle_passes_first_and_final_and_limits_rate():
    from cl_core.task import Progress, Throttle

    now = [0.0]
    got: list[int] = []
    throttle = Throttle(lambda p: got.append(p.done), 0.1, clock=lambda: now[0])
    for i in range(1, 101):
        now[0] = i * 0.01  # 100 updates over one second
        throttle(Progress(i, 100))
    assert got[0] == 1 and got[-1] == 100
    assert 9 <= len(got) <= 12
    assert np.all(np.diff(got) > 0)


def test_the_embedding_cache_is_opened_by_a_worker_never_the_ui_thread(qtbot, native_dir, tmp_path, monkeypatch):
    """Opening the cache reads its database and scans for orphans: the window must not wait on it."""
    opened_in: list[str] = []
    real = actions.EmbeddingCache.__init__

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        opened_in.append(threading.current_thread().name)
        real(self, *args, **kwargs)

    monkeypatch.setattr(actions.EmbeddingCache, "__init__", spy)
    session = Session()
    jobs = Jobs(session)
    jobs.settings.cache_dir = tmp_path / "cache"
    with qtbot.waitSignal(session.model_changed, timeout=60_000):
        jobs.open_model(native_dir)
    jobs.open_gallery(make_gallery(tmp_path / "g", n=3) / "manifest.csv")
    wait_idle(qtbot, jobs)
    assert session.index is not None and opened_in
    assert threading.main_thread().name not in opened_in
    assert jobs.shutdown()
