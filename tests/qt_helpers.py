"""Helpers for widget tests: simulated file-manager drops, and waiting on jobs through their signals."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QWidget


def drop_files(widget: QWidget, paths: list[Path], text: str | None = None) -> QDropEvent:
    mime = QMimeData()
    if paths:
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    if text is not None:
        mime.setText(text)
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)  # what Qt calls once the drag is released over the widget
    return event


def wait_idle(qtbot, jobs, timeout: int = 60_000) -> None:
    """Block until every job finished, driven by the jobs' own busy signal (no sleeps)."""
    if jobs.busy:
        with qtbot.waitSignal(jobs.busy_changed, timeout=timeout, check_params_cb=lambda busy: not busy):
            pass
