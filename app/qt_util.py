"""Small Qt helpers shared by panels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData
from PySide6.QtWidgets import QWidget


def local_paths(mime: QMimeData) -> list[str]:
    """Local file paths from a drag from the file manager (non-file URLs are ignored)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


def save_as(parent: QWidget, title: str, name: str, filters: str, export_to: Callable[[str], object],
            report: Callable[[str], object]) -> None:
    """Ask where, then export there; a failure to write is one line through `report`, never a traceback."""
    from PySide6.QtWidgets import QFileDialog

    path, _ = QFileDialog.getSaveFileName(parent, title, name, filters)
    if path:
        try:
            export_to(path)
        except OSError as exc:
            report(f"{path}: could not export ({exc.strerror or exc})")


def export_json(path: str | Path, data: Any) -> Path:
    """`data` as indented JSON, written atomically (a panel's figures, a map's values)."""
    import json

    from cl_core.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=1))
    return Path(path)


def export_figure(widget: QWidget, path: str | Path, title: str = "Contrastive Lens") -> Path:
    """A widget as drawn, to PNG or SVG by the file's suffix (Qt's own SVG writer; pyqtgraph's trips on some
    paths)."""
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    path = Path(path)
    if path.suffix.lower() != ".svg":
        if not widget.grab().save(str(path)):
            raise OSError(f"{path}: could not write the image")
        return path
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(widget.size())
    generator.setViewBox(widget.rect())
    generator.setTitle(title)
    painter = QPainter(generator)
    view: Any = widget  # plot widgets are graphics views: their render() takes the painter
    view.render(painter)
    painter.end()
    return path
