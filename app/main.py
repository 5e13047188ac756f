"""Start the desktop app: `clens` (optionally `clens gui MODEL [FILES...]`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cl_core.resources import RESOURCES


def run_app(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="clens gui", description="Open the Contrastive Lens window.")
    parser.add_argument("model", nargs="?", help="checkpoint to open at start")
    parser.add_argument("inputs", nargs="*", help="files to embed once the model is open")
    parser.add_argument("--empty", action="store_true", help="start without the bundled demo")
    parser.add_argument("--screenshot", help="save a PNG of the window once the work is done, then quit")
    parser.add_argument("--gallery", help="open this gallery (folder, manifest, demo:NAME) once the model is ready")
    parser.add_argument("--search", help="then search it for this text")
    args = parser.parse_args(list(argv))

    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from app.qt_main_window import MainWindow

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("Contrastive Lens")
    pg.setConfigOptions(antialias=True, background="w", foreground="#333333", imageAxisOrder="row-major")
    style = RESOURCES / "styles" / "lens.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    window = MainWindow()
    window.show()
    if args.model:
        window.route_paths([args.model, *args.inputs])
    elif not args.empty:
        from cl_core.demo.galleries import DEMO_MODEL

        if (DEMO_MODEL / "clens_config.json").is_file():
            window.jobs.open_demo()
    if args.gallery:
        then_open_gallery(window, args.gallery, args.search)
    if args.screenshot:
        from app.screenshot import save_when_idle

        save_when_idle(window, args.screenshot)
    return int(app.exec())


def then_open_gallery(window, source: str, query: str | None) -> None:  # noqa: ANN001 - MainWindow
    """Open `source` after the first model load, then (optionally) search it and show the results."""
    jobs = window.jobs

    def step(name: str) -> None:
        if name in ("loading the model", "opening the demo") and window.session.model is not None:
            jobs.open_gallery(source)
        elif name == "opening the gallery":
            jobs.job_done.disconnect(step)
            window.docks["search"].raise_()
            if query and window.session.index is not None:
                window.panels["search"].query.setText(query)
                window.panels["search"].run_search()

    jobs.job_done.connect(step)
