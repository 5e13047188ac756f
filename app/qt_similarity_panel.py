"""Similarity matrix: cosine of every pair of embedded items as a heatmap; hover shows the pair.

Rows and columns follow the session's item order; a click selects the pair in the session, and the
session's selection is outlined here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from cl_core.modality import Item, Modality
from cl_core.session import Session

from .qt_util import export_figure

MAX_TICKS = 40
EMPTY_HINT = "Embed two or more items to see their similarities."
HOVER_HINT = "Hover a cell to read the pair and its cosine; click to select both items."


def short_label(text: str, n: int = 30) -> str:
    """A file's name, or a text's start, cut to `n` characters with an ellipsis (the full one is in the hover)."""
    tail = text.rsplit("/", 1)[-1]
    return tail if len(tail) <= n else tail[: n - 1] + "…"


def hover_label(item: Item) -> str:
    """What the hover shows of an item: a text whole, a file by its name."""
    return str(item.data) if item.modality is Modality.TEXT else short_label(item.label, 60)


class SimilarityPanel(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.matrix = np.zeros((0, 0), np.float32)
        self.view = pg.GraphicsLayoutWidget()
        self.plot = self.view.addPlot()
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(-1.0, 1.0), colorMap=pg.colormap.get("viridis"),
                                        label="cosine", interactive=False)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.selection_box = pg.ScatterPlotItem(symbol="s", pen=pg.mkPen("#ff4d6d", width=2), brush=None, pxMode=False,
                                                size=1.0)
        self.plot.addItem(self.selection_box)
        self.export = QPushButton("Export…")
        self.export.setToolTip("Save the similarity matrix as PNG or SVG")
        self.export.clicked.connect(self.export_dialog)
        self.hover = QLabel(EMPTY_HINT)
        self.hover.setObjectName("hoverLabel")
        self.hover.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.hover, 1)
        bottom.addWidget(self.export)
        layout.addLayout(bottom)
        self.view.scene().sigMouseMoved.connect(self._mouse_moved)
        self.view.scene().sigMouseClicked.connect(self._mouse_clicked)
        session.items_changed.connect(self.refresh)
        session.selection_changed.connect(self._show_selection)

    def export_to(self, path: str | Path) -> Path:
        return export_figure(self.view, path, "Contrastive Lens similarity matrix")

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the matrix", "similarity.png",
                                              "PNG image (*.png);;SVG (*.svg)")
        if path:
            self.export_to(path)

    def refresh(self) -> None:
        self.matrix = self.session.similarity()
        n = len(self.matrix)
        if n == 0:
            self.image.clear()
            self.hover.setText(EMPTY_HINT)
        else:
            # colour range from the data: real models' cosines crowd into a narrow band
            low = float(self.matrix.min()) if n > 1 else -1.0
            self.image.setImage(self.matrix)
            self.image.setRect(QRectF(0, 0, n, n))
            self.colorbar.setLevels(values=(min(low, 0.999), 1.0))
            self.plot.setRange(xRange=(0, n), yRange=(0, n), padding=0.02)
            self.hover.setText(HOVER_HINT)
        # names down the side, indices along the bottom (names there would overlap)
        names = [(i + 0.5, f"{short_label(it.label)}  {i}") for i, it in enumerate(self.session.items)]
        numbers = [(i + 0.5, str(i)) for i in range(n)]
        few = n <= MAX_TICKS
        self.plot.getAxis("left").setTicks([names] if few else None)
        self.plot.getAxis("bottom").setTicks([numbers] if few else None)
        self._show_selection(self.session.selection)

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        if not len(self.matrix) or not self.plot.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.plot.vb.mapSceneToView(scene_pos)
        col, row = int(np.floor(p.x())), int(np.floor(p.y()))
        n = len(self.matrix)
        return (row, col) if 0 <= row < n and 0 <= col < n else None

    def describe(self, row: int, col: int) -> str:
        items = self.session.items
        a, b = items[row], items[col]
        return (f"{hover_label(a)}  ↔  {hover_label(b)}   "
                f"cosine {self.matrix[row, col]:+.4f}   ({a.modality.value} / {b.modality.value})")

    def _mouse_moved(self, pos: QPointF) -> None:
        cell = self.cell_at(pos)
        if cell is not None:
            text = self.describe(*cell)
            self.hover.setText(text)
            self.view.setToolTip(text)

    def _mouse_clicked(self, event) -> None:
        cell = self.cell_at(event.scenePos())
        if cell is not None:
            self.session.select(set(cell))

    def _show_selection(self, selection: frozenset[int]) -> None:
        sel = sorted(i for i in selection if i < len(self.matrix))
        spots = [{"pos": (c + 0.5, r + 0.5), "size": 1.0} for r in sel for c in sel]
        self.selection_box.setData(spots)
