"""Ctrl+C and SIGTERM for the window: Qt's event loop runs in C++, where Python's signal handlers never
get a turn, so a terminal's Ctrl+C was ignored. A short timer gives Python a turn; the handler closes the
window the normal way (layout saved, jobs cancelled, finished work kept in the cache)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMainWindow

TICK_MS = 200


def close_on_signals(window: QMainWindow) -> QTimer:
    """SIGINT and SIGTERM close `window`; a second signal while closing leaves at once."""
    closing = [False]

    def handler(signum: int, _frame: object) -> None:
        if closing[0]:
            os._exit(128 + signum)
        closing[0] = True
        QTimer.singleShot(0, window.close)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    timer = QTimer(window)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: None)  # the turn Python needs to run the handler
    timer.start()
    ready = os.environ.get("CLENS_READY_FILE")  # automation: written once the window is up and listening
    if ready:
        QTimer.singleShot(0, lambda: Path(ready).write_text(str(os.getpid()), encoding="utf-8"))
    return timer
