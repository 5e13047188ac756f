"""Run plain core functions `fn(state) -> result` on a thread pool; results come back as Qt signals.

Orange's TaskState / napari's thread_worker in small: the core never knows about threads, the GUI thread
never waits. Signals live on a QObject created in the GUI thread, so emissions from the worker are
queued to it. `shutdown()` cancels everything and waits for the pool, so closing the window mid-job
leaves no running thread and no signal aimed at a deleted widget.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from cl_core.errors import Cancelled, ClensError
from cl_core.task import TaskState


class TaskSignals(QObject):
    progress = Signal(object)  # Progress
    finished = Signal(object)  # the result
    failed = Signal(str)  # a message for the user
    cancelled = Signal()
    done = Signal()  # always last, whatever the outcome


class _Runnable(QRunnable):
    def __init__(self, fn: Callable[[TaskState], Any], state: TaskState, signals: TaskSignals) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.fn = fn
        self.state = state
        self.signals = signals

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


class Task:
    """One submitted job: its state (cancel) and its signals."""

    def __init__(self, name: str, state: TaskState, signals: TaskSignals) -> None:
        self.name = name
        self.state = state
        self.signals = signals

    def cancel(self) -> None:
        self.state.cancel()


class TaskRunner(QObject):
    """Submits jobs to a private QThreadPool and tracks those still running."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(max_threads)
        self.active: list[Task] = []

    def submit(self, name: str, fn: Callable[[TaskState], Any],
               wire: Callable[[Task], None] | None = None) -> Task:
        """Start fn(state) on the pool. `wire` connects the caller's slots *before* the job starts,
        so a job that finishes at once cannot emit into the void."""
        signals = TaskSignals()
        state = TaskState(on_progress=lambda p: signals.progress.emit(p))
        task = Task(name, state, signals)
        self.active.append(task)
        signals.done.connect(lambda: self._forget(task))  # first: the caller's done-slots see it gone
        if wire is not None:
            wire(task)
        self.pool.start(_Runnable(fn, state, signals))
        return task

    def _forget(self, task: Task) -> None:
        if task in self.active:
            self.active.remove(task)

    def cancel_all(self) -> None:
        for task in list(self.active):
            task.cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel all jobs and wait for their threads; True when the pool is empty."""
        self.cancel_all()
        for task in list(self.active):
            for sig in (task.signals.progress, task.signals.finished, task.signals.failed, task.signals.cancelled):
                try:
                    sig.disconnect()
                except (RuntimeError, TypeError):
                    pass
        ok = self.pool.waitForDone(timeout_ms)
        self.active.clear()
        return ok

