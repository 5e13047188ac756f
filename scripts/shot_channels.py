"""docs/channels.png: the tissue demo searched, its mIF results shown with five channels in their own colours
(DAPI blue, panCK yellow, CD8 green, CD68 magenta, Ki67 red; panCK's upper limit set, the rest auto), and the
Colours dialog that set them. Run by scripts/screenshot.sh under xvfb; argv[1] is the PNG to write."""

from __future__ import annotations

import sys

from shot_window import shoot

LOOKS = (("DAPI", "blue", None, None), ("panCK", "yellow", None, 900.0), ("CD8", "green", None, None),
         ("CD68", "magenta", None, None), ("Ki67", "red", None, None))
WAIT_TICKS = 3  # timer ticks after the looks are set, for the thumbnails to land


def main() -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QApplication

    from cl_core.actions import ChannelLook
    from clens_app.qt_composite import ChannelLooks

    looks = [ChannelLook(*lk) for lk in LOOKS]
    ticks: list[int] = []

    def ask(window) -> None:  # type: ignore[no-untyped-def]
        window.docks["search"].raise_()
        window.panels["search"].composite.apply_looks(looks)

    def done(window) -> bool:  # type: ignore[no-untyped-def]
        ticks.append(1)
        return len(ticks) > WAIT_TICKS

    def grab(window):  # type: ignore[no-untyped-def]
        """The window with the Colours dialog that set the looks drawn over its lower right corner."""
        dialog = ChannelLooks(window.panels["search"].composite.channel_names(), looks, window)
        dialog.show()
        QApplication.processEvents()
        shot, box = window.grab(), dialog.grab()
        painter = QPainter(shot)
        painter.drawPixmap(QPoint(shot.width() - box.width() - 20, shot.height() - box.height() - 60), box)
        painter.end()
        dialog.close()
        return shot

    shoot(sys.argv[1], lambda w: bool(w.session.results), ask, done, grab,
          search="dense CD8 T-cell infiltrate, PD-L1 high", interval_ms=400)


if __name__ == "__main__":
    main()
