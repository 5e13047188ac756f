"""What the screenshot scripts share: the window on the tissue demo, light theme; once `ready`, `ask` is called
once; once `done`, the window's picture (or `grab`'s) is saved and the app quits. Polled on a timer, so the
window stays live while its jobs run. Run under xvfb (scripts/screenshot.sh)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def shoot(out: str, ready: Callable[[Any], bool], ask: Callable[[Any], None], done: Callable[[Any], bool],
          grab: Callable[[Any], Any] | None = None, note: Callable[[Any], str] | None = None,
          search: str | None = None, interval_ms: int = 300) -> None:
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from clens_app.qt_main_window import MainWindow

    app = QApplication(sys.argv[:1])
    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    window = MainWindow()
    window.set_theme("light")
    window.show()
    window.jobs.open_gallery("demo:tissue")
    if search:
        window.jobs.search_when_ready(search)
    asked: list[bool] = []
    timer = QTimer()

    def check() -> None:
        if window.jobs.busy or not ready(window):
            return
        if not asked:
            asked.append(True)
            ask(window)
            return
        if not done(window):
            return
        timer.stop()
        app.processEvents()
        (grab(window) if grab else window.grab()).save(out)
        print(f"screenshot saved to {out}" + (f" ({note(window)})" if note else ""))
        window.close()
        app.quit()

    timer.setInterval(interval_ms)
    timer.timeout.connect(check)
    timer.start()
    app.exec()
