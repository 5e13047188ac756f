"""Start the desktop app: `clens [gui] [MODEL] [FILES...]` (the parser lives in cl_core.cli; this is the
`contrastive_lens.frontends` entry point it calls)."""

from __future__ import annotations

import argparse
import sys

from cl_core.actions.demo import DEFAULT_DEMO, demo_available
from cl_core.resources import RESOURCES


def run_app(args: argparse.Namespace) -> int:
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from .qt_main_window import MainWindow
    from .qt_signals import close_on_signals

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("Contrastive Lens")
    icon = RESOURCES / "icons" / "clens.png"
    if icon.is_file():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    window = MainWindow()
    window.set_theme(args.theme or window.saved_theme())
    if args.device:
        window.jobs.settings.device = args.device
    window.jobs.settings.allow_pickle = bool(args.allow_pickle)
    window.jobs.settings.allow_outside_files = bool(args.allow_outside_files)
    window.show()
    close_on_signals(window)
    if args.search:
        window.jobs.search_when_ready(args.search)
        window.jobs.explain_rank = getattr(args, "explain", None)
    if args.project:
        window.jobs.project_when_ready(args.project)
    if getattr(args, "evaluate", False):
        window.jobs.when_gallery_ready(window.jobs.evaluate)
    if getattr(args, "compare", None):
        second = args.compare
        window.jobs.when_gallery_ready(lambda: window.jobs.open_comparison(second))
    if getattr(args, "diagnose", False):
        window.jobs.when_gallery_ready(window.jobs.diagnose)
    if args.colour:
        window.projection_state().colour_by = args.colour
    if args.model and getattr(args, "arch", None):
        window.jobs.open_model(args.model, list(args.inputs), arch=args.arch)
    elif args.model:
        window.route_paths([args.model, *args.inputs], explicit_model=True)
    elif not args.empty and demo_available(DEFAULT_DEMO) and not (args.gallery or "").startswith("demo:"):
        window.jobs.open_demo(with_gallery=not args.gallery)
    if args.gallery:
        window.jobs.open_gallery(args.gallery)  # a demo gallery brings its model; else it waits for the model
    if args.screenshot:
        from .screenshot import save_when_idle

        save_when_idle(window, args.screenshot)
    return int(app.exec())
