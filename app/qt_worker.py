"""Run plain core functions `fn(state) -> result` on a thread pool; results come back as Qt signals.

Orange's ConcurrentMixin / napari's thread_worker in small, with rules:
- every job has a kind; starting a job of a replacing kind (model, gallery, search, ...) cancels the running
  job of that kind, and a result that arrives after a newer request of its kind is dropped (a generation
  counter per kind), so a slow old search never overwrites a newer one;
- cancel is per job; progress is throttled (at most ~10 updates a second, the final one always);
- the core never knows about threads, the GUI thread never waits. Signals live on QObjects created in
  the GUI thread, so emissions from the worker are queued to it. `shutdown()` cancels everything and waits
  for the pool, so closing the window mid-job leaves no running thread and no signal aimed at a deleted widget.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from cl_core.errors import Cancelled, ClensError
from cl_core.task import Progress, TaskState, Throttle

# kinds whose newer request supersedes an older one; other kinds (e.g. "embed": each drop is its own
# request) run side by side
REPLACING_KINDS = frozenset({"model", "gallery", "search", "project", "place", "thumbs", "preview", "explain",
                             "tissue"})
PROGRESS_INTERVAL_S = 0.1


class TaskSignals(QObject):
    progress = Signal(object)  # Progress (throttled)
    partial = Signal(object)  # part of the result, ready early
    finished = Signal(object)  # the result
    failed = Signal(str)  # a message for the user
    cancelled = Signal()
    done = Signal()  # always last, whatever the outcome


def _disconnect_all(signals: TaskSignals, keep_done: bool = False) -> None:
    with warnings.catch_warnings():  # PySide warns (and does nothing) for a signal with no slot left
        warnings.simplefilter("ignore", RuntimeWarning)
        for sig in (signals.progress, signals.partial, signals.finished, signals.failed, signals.cancelled,
                    *(() if keep_done else (signals.done,))):
            try:
                sig.disconnect()
            except (RuntimeError, TypeError):  # nothing connected
                pass


class _Runnable(QRunnable):
    def __init__(self, fn: Callable[[TaskState], Any], state: TaskState, signals: TaskSignals,
                 exited: threading.Event) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.fn = fn
        self.state = state
        self.signals = signals
        self.exited = exited  # set once the worker will never touch the signals again

    def run(self) -> None:
        sig = self.signals
        try:
            result = self.fn(self.state)
        except Cancelled:
            sig.cancelled.emit()
        except ClensError as exc:
            sig.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in a job must reach the user, not kill the app
            sig.failed.emit(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")
        else:
            if self.state.cancel_requested:
                sig.cancelled.emit()
            sig.finished.emit(result)
        finally:
            sig.done.emit()
            self.exited.set()


class Job:
    """One submitted job: its kind, its state (cancel, last progress) and its signals."""

    def __init__(self, job_id: int, kind: str, name: str, generation: int, state: TaskState,
                 signals: TaskSignals) -> None:
        self.id, self.kind, self.name, self.generation = job_id, kind, name, generation
        self.state = state
        self.signals = signals
        self.started = time.monotonic()
        self.progress = Progress(0, 0, name)
        self.exited = threading.Event()

    def cancel(self) -> None:
        self.state.cancel()

    @property
    def cancelled(self) -> bool:
        return self.state.cancel_requested

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None until there is a rate)."""
        p = self.progress
        if p.total <= 0 or p.done <= 0:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed * (p.total - p.done) / p.done


class JobRunner(QObject):
    """Submits jobs to a private QThreadPool and tracks those still running."""

    jobs_changed = Signal()  # a job started or ended
    progress = Signal(object)  # (Job, Progress), throttled per job

    def __init__(self, parent: QObject | None = None, max_threads: int = 4) -> None:
        super().__init__(parent)
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(max_threads)
        self.active: list[Job] = []
        self._retired: list[Job] = []  # ended; their signals are deleted once the worker has let go of them
        self._ids = itertools.count(1)
        self._generation: dict[str, int] = {}

    def submit(self, kind: str, name: str, fn: Callable[[TaskState], Any],
               on_result: Callable[[Any], None] | None = None,
               wire: Callable[[Job], None] | None = None,
               on_partial: Callable[[Any], None] | None = None) -> Job:
        """Start fn(state) on the pool. `on_result` (and `on_partial`, for parts reported early) get results
        only if no newer job of the same kind was started meanwhile; `wire` connects further slots *before*
        the job starts."""
        if kind in REPLACING_KINDS:
            self.cancel_kind(kind)
        generation = self._generation[kind] = self._generation.get(kind, 0) + 1
        self._release_retired()
        # parented to the runner: Qt owns the C++ object, so it is never destroyed by a Python reference
        # dropped on a worker thread; it is deleted in this thread once the job's worker is done with it
        signals = TaskSignals(self)
        throttle = Throttle(lambda p: signals.progress.emit(p), PROGRESS_INTERVAL_S)
        state = TaskState(on_progress=throttle, on_partial=lambda part: signals.partial.emit(part))
        job = Job(next(self._ids), kind, name, generation, state, signals)
        self.active.append(job)
        signals.progress.connect(lambda p: self._progress(job, p))
        signals.done.connect(lambda: self._forget(job))  # first: the caller's done-slots see it gone
        if on_result is not None:
            signals.finished.connect(lambda result: self.is_newest(job) and on_result(result))
        if on_partial is not None:
            signals.partial.connect(lambda part: self.is_newest(job) and on_partial(part))
        if wire is not None:
            wire(job)
        self.pool.start(_Runnable(fn, state, signals, job.exited))
        self.jobs_changed.emit()
        return job

    def is_newest(self, job: Job) -> bool:
        """False once a newer job of the same kind was started: its result is out of date."""
        return self._generation.get(job.kind) == job.generation

    def _progress(self, job: Job, p: Progress) -> None:
        job.progress = p
        self.progress.emit((job, p))

    def _forget(self, job: Job) -> None:
        if job in self.active:
            self.active.remove(job)
            self._retired.append(job)
            self.jobs_changed.emit()

    def _release_retired(self) -> None:
        for job in [j for j in self._retired if j.exited.is_set()]:
            self._retired.remove(job)
            # the slots (closures holding the job, which holds these signals) are let go first, so the
            # C++ object's deletion later does not free its own Python wrapper halfway through
            _disconnect_all(job.signals)
            job.signals.deleteLater()

    def find(self, job_id: int) -> Job | None:
        return next((j for j in self.active if j.id == job_id), None)

    def cancel(self, job_id: int) -> None:
        job = self.find(job_id)
        if job is not None:
            job.cancel()

    def cancel_kind(self, kind: str) -> None:
        for job in list(self.active):
            if job.kind == kind:
                job.cancel()

    def cancel_all(self) -> None:
        for job in list(self.active):
            job.cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel all jobs and wait for their threads; True when the pool is empty."""
        self.cancel_all()
        for job in list(self.active):  # no late result reaches a window being closed
            _disconnect_all(job.signals, keep_done=True)
        ok = self.pool.waitForDone(timeout_ms)
        self._retired.extend(self.active)
        self.active.clear()
        if ok:
            self._release_retired()
        return ok


def settle_heap() -> None:
    """Leave the objects alive now (libraries, the model, an opened gallery) out of later full garbage
    collections. A full collection scans every tracked object while holding the GIL: with torch, Qt and a
    10k-item gallery loaded (~470k objects) one took 200+ ms, started by whichever thread allocated, and froze
    the window (found with benchmarks/bench_window.py's stall trace). Frozen objects are still freed by
    reference counting; only cycles among them wait. Cheap: it moves list heads, it does not scan."""
    gc.freeze()
