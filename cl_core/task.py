"""Task state shared between long-running core code and whoever runs it (CLI or a GUI worker).

Core functions take a TaskState, report progress and partial results on it, and poll
`check_cancelled()` between units of work. Nothing here knows about threads or Qt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cl_core.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    text: str = ""

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]


class TaskState:
    """Progress, cancellation and a message sink for one job; safe to share across threads."""

    def __init__(self, on_progress: ProgressCallback | None = None,
                 on_message: Callable[[str], None] | None = None,
                 on_partial: Callable[[object], None] | None = None) -> None:
        self._cancel = threading.Event()
        self._on_progress = on_progress
        self._on_message = on_message
        self._on_partial = on_partial
        self.progress = Progress(0, 0)

    def cancel(self) -> None:
        self._cancel.set()

    def child(self, on_progress: ProgressCallback | None = None) -> TaskState:
        """A state for one step of this job: cancelled with it; its progress goes to `on_progress`."""
        sub = TaskState(on_progress=on_progress, on_message=self._on_message, on_partial=self._on_partial)
        sub._cancel = self._cancel
        return sub

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user")

    def set_progress(self, done: int, total: int, text: str = "") -> None:
        self.progress = Progress(done, total, text)
        if self._on_progress is not None:
            self._on_progress(self.progress)

    def partial(self, result: object) -> None:
        """Part of the result, ready before the whole (e.g. the first thumbnails): shown while the rest runs."""
        if self._on_partial is not None:
            self._on_partial(result)

    def message(self, text: str) -> None:
        if self._on_message is not None:
            self._on_message(text)


class Throttle:
    """Pass progress on at most every `interval` seconds, and always the first and the final one
    (done == total), so a busy job cannot flood a UI or a terminal."""

    def __init__(self, callback: ProgressCallback, interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.callback, self.interval, self.clock = callback, interval, clock
        self._last = -float("inf")
        self._lock = threading.Lock()

    def __call__(self, p: Progress) -> None:
        now = self.clock()
        final = p.total > 0 and p.done >= p.total
        with self._lock:
            if not final and now - self._last < self.interval:
                return
            self._last = now
        self.callback(p)
