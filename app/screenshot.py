"""Save a PNG of the window once all jobs are done (for docs and for looking at the app headless)."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from .qt_main_window import MainWindow


def save_when_idle(window: MainWindow, path: str) -> None:
    def check() -> None:
        if window.jobs.busy:
            return
        timer.stop()
        window.grab().save(path)
        print(f"screenshot saved to {path}")
        print(f"window: {window.windowTitle()}")  # names the model and gallery shown (scripts check it)
        window.close()
        QApplication.quit()

    timer = QTimer(window)
    timer.setInterval(500)
    timer.timeout.connect(check)
    QTimer.singleShot(1500, timer.start)
