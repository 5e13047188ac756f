"""Progress for the headless verbs: a tqdm bar on a terminal (cleared when done), plain lines at a
modest rate when stderr is a file or a pipe, nothing with --quiet."""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import IO, Any

from cl_core.task import Progress, TaskState

PLAIN_INTERVAL_S = 2.0  # at most one line per this many seconds when not on a terminal


class ProgressPrinter:
    """Use as a context manager; `state` is the TaskState to hand to an action."""

    def __init__(self, quiet: bool = False, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = None
        self._stage = ""
        self._last_plain = 0.0
        self._last: Progress | None = None
        self.state = TaskState(on_progress=self._show, on_message=self.message)

    def message(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def _show(self, p: Progress) -> None:
        if self.quiet:
            return
        self._last = p
        if self.tty:
            self._show_bar(p)
        else:
            now = time.monotonic()
            finished = p.total > 0 and p.done >= p.total
            if now - self._last_plain >= PLAIN_INTERVAL_S or (finished and p.text != self._stage):
                self._last_plain = now
                self._stage = p.text if finished else self._stage
                count = f" {p.done}/{p.total}" if p.total else ""
                print(f"{p.text}{count}", file=self.stream, flush=True)

    def _show_bar(self, p: Progress) -> None:
        from tqdm import tqdm

        stage = p.text.split(" ", 1)[0] if p.text else ""
        if self._bar is not None and (stage != self._stage or (p.total or None) != self._bar.total):
            self._close_bar()
        if self._bar is None:
            self._stage = stage
            self._bar = tqdm(total=p.total or None, file=self.stream, leave=False, dynamic_ncols=True,
                             mininterval=0.1, unit="item")
        self._bar.set_description_str(p.text[:40], refresh=False)
        self._bar.n = p.done
        self._bar.refresh() if p.total and p.done >= p.total else self._bar.update(0)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressPrinter:
        """Ctrl+C (or SIGTERM) asks the job to stop: it returns what it finished (the cache keeps it) and the
        verb exits 130; a second Ctrl+C stops at once."""
        self.interrupted = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._interrupt)
        return self

    def _interrupt(self, signum: int, _frame: Any) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.state.cancel()
        self.message("interrupted: stopping after the current batch (Ctrl+C again to stop at once)")

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._close_bar()
