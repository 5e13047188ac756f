"""Task state shared between long-running core code and whoever runs it (CLI or a GUI worker).

Core functions take a TaskState, report progress and partial results on it, and poll
`check_cancelled()` between units of work. Nothing here knows about threads or Qt.
"""

from __future__ import annotations

import threading
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
                 on_message: Callable[[str], None] | None = None) -> None:
        self._cancel = threading.Event()
        self._on_progress = on_progress
        self._on_message = on_message
        self.progress = Progress(0, 0)

    def cancel(self) -> None:
        self._cancel.set()

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

    def message(self, text: str) -> None:
        if self._on_message is not None:
            self._on_message(text)
