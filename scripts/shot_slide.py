"""docs/slide.png: a synthetic whole slide (mIF, 4096 px) under the tissue demo model, the heatmap of a text
over it. Run by scripts/screenshot.sh under xvfb; argv[1] is the PNG
to write, argv[2] a scratch folder for the slide."""

from __future__ import annotations

import sys

TEXT = "tumour necrosis present"


def main() -> None:
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from cl_core.actions import make_slide
    from clens_app.qt_main_window import MainWindow

    files = make_slide(sys.argv[2], size=4096, seed=5)
    app = QApplication(sys.argv[:1])
    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    window = MainWindow()
    window.set_theme("light")
    window.show()
    window.jobs.open_gallery("demo:tissue")
    panel = window.panels["slide"]
    step: list[str] = []
    timer = QTimer()

    def check() -> None:
        session = window.session
        if window.jobs.busy or session.index is None:
            return
        if not step:
            step.append("asked")
            panel.open_slide(files.mif)  # type: ignore[attr-defined]
            panel.query.setText(TEXT)  # type: ignore[attr-defined]
            panel.show_button.click()  # type: ignore[attr-defined]
            return
        if session.slide is None:
            return
        timer.stop()
        app.processEvents()
        window.grab().save(sys.argv[1])
        print(f"screenshot saved to {sys.argv[1]} ({np.isfinite(session.slide.shown).sum()} tissue tiles)")
        window.close()
        app.quit()

    timer.setInterval(300)
    timer.timeout.connect(check)
    timer.start()
    app.exec()


if __name__ == "__main__":
    main()
