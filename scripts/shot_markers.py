"""docs/markers.png: the tissue demo gallery, one H&E patch selected, its markers inferred with a clinical text;
with argv[2] = what-if (docs/what-if.png), eight H&E patches selected and their text edited from stage II to IV.
Run by scripts/screenshot.sh under xvfb; argv[1] is the PNG to write."""

from __future__ import annotations

import sys

TEXT = "stage III breast carcinoma; Ki67 high, PD-L1 negative"
WHAT_IF = ("stage II lung adenocarcinoma; moderate CD8 T-cell infiltrate", "stage IV lung adenocarcinoma; moderate "
           "CD8 T-cell infiltrate")


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
        what_if = sys.argv[2:3] == ["what-if"]
        if not asked:
            asked.append(True)
            part = next(p for p in session.index.parts.values() if p.modality.value == "image")
            panel = window.panels["markers"]
            if what_if:
                session.select_gallery(range(part.start, part.start + 8))
                panel.text.setText(WHAT_IF[0])  # type: ignore[attr-defined]
                panel.edited.setText(WHAT_IF[1])  # type: ignore[attr-defined]
                panel.tabs.setCurrentIndex(1)  # type: ignore[attr-defined]
                panel.what_if_button.click()  # type: ignore[attr-defined]
                return
            session.select_gallery([part.start + 5])
            panel.text.setText(TEXT)  # type: ignore[attr-defined]
            panel.run_button.click()  # type: ignore[attr-defined]
            return
        if (session.counterfactual if what_if else session.markers) is None:
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
