"""docs/markers.png: the tissue demo gallery, one H&E patch selected, its markers inferred with a clinical text.
Run by scripts/screenshot.sh under xvfb; argv[1] is the PNG to write."""

from __future__ import annotations

import sys

TEXT = "stage III breast carcinoma; Ki67 high, PD-L1 negative"


def main() -> None:
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
    asked = []
    timer = QTimer()

    def check() -> None:
        session = window.session
        if window.jobs.busy or session.index is None:
            return
        if not asked:
            asked.append(True)
            part = next(p for p in session.index.parts.values() if p.modality.value == "image")
            session.select_gallery([part.start + 5])
            panel = window.panels["markers"]
            panel.text.setText(TEXT)  # type: ignore[attr-defined]
            panel.run_button.click()  # type: ignore[attr-defined]
            return
        if session.markers is None:
            return
        timer.stop()
        app.processEvents()
        window.grab().save(sys.argv[1])
        print(f"screenshot saved to {sys.argv[1]}")
        window.close()
        app.quit()

    timer.setInterval(300)
    timer.timeout.connect(check)
    timer.start()
    app.exec()


if __name__ == "__main__":
    main()
