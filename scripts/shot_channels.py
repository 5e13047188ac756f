"""docs/channels.png: the tissue demo searched, its mIF results shown with five channels in their own colours
(DAPI blue, panCK yellow, CD8 green, CD68 magenta, Ki67 red; panCK's upper limit set, the rest auto), and the
Colours dialog that set them. Run by scripts/screenshot.sh under xvfb; argv[1] is the PNG to write."""

from __future__ import annotations

import sys

LOOKS = (("DAPI", "blue", None, None), ("panCK", "yellow", None, 900.0), ("CD8", "green", None, None),
         ("CD68", "magenta", None, None), ("Ki67", "red", None, None))


def main() -> None:
    import pyqtgraph as pg
    from PySide6.QtCore import QPoint, QTimer
    from PySide6.QtGui import QPainter, QPixmap
    from PySide6.QtWidgets import QApplication

    from cl_core.actions import ChannelLook
    from clens_app.qt_composite import ChannelLooks
    from clens_app.qt_main_window import MainWindow

    app = QApplication(sys.argv[:1])
    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    window = MainWindow()
    window.set_theme("light")
    window.show()
    window.jobs.open_gallery("demo:tissue")
    window.jobs.search_when_ready("dense CD8 T-cell infiltrate, PD-L1 high")
    step: list[str] = []
    timer = QTimer()
    looks = [ChannelLook(*lk) for lk in LOOKS]

    def check() -> None:
        if window.jobs.busy or not window.session.results:
            return
        search = window.panels["search"]
        if not step:
            step.append("looks")
            window.docks["search"].raise_()
            search.composite.apply_looks(looks)  # type: ignore[attr-defined]
            return
        if len(step) < 4:  # a few ticks for the thumbnails to land
            step.append("wait")
            return
        timer.stop()
        dialog = ChannelLooks(search.composite.channel_names(), looks, window)  # type: ignore[attr-defined]
        dialog.show()
        app.processEvents()
        shot = window.grab()
        box = dialog.grab()
        painter = QPainter(shot)
        painter.drawPixmap(QPoint(shot.width() - box.width() - 20, shot.height() - box.height() - 60), box)
        painter.end()
        QPixmap(shot).save(sys.argv[1])
        print(f"screenshot saved to {sys.argv[1]}")
        dialog.close()
        window.close()
        app.quit()

    timer.setInterval(400)
    timer.timeout.connect(check)
    timer.start()
    app.exec()


if __name__ == "__main__":
    main()
