"""Selecting in a map: a pyqtgraph ViewBox where shift-drag draws a box or a free-hand lasso instead of
panning, and the even-odd test that finds the points inside a lasso."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPainterPath
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Boolean mask of `points` [N, 2] inside `polygon` [M, 2] (even-odd rule), tested only within the
    polygon's bounding box: one vectorised pass per edge, so a lasso over 1M points takes well under a second."""
    mask = np.zeros(len(points), bool)
    if len(polygon) < 3 or not len(points):
        return mask
    lo, hi = polygon.min(axis=0), polygon.max(axis=0)
    near = np.flatnonzero((points[:, 0] >= lo[0]) & (points[:, 0] <= hi[0]) &
                          (points[:, 1] >= lo[1]) & (points[:, 1] <= hi[1]))
    x, y = points[near, 0].astype(np.float64), points[near, 1].astype(np.float64)
    inside = np.zeros(len(near), bool)
    xs, ys = polygon[:, 0].astype(np.float64), polygon[:, 1].astype(np.float64)
    for (x1, y1), (x2, y2) in zip(zip(xs, ys, strict=True), zip(np.roll(xs, 1), np.roll(ys, 1), strict=True),
                                  strict=True):
        crosses = (y1 > y) != (y2 > y)
        if crosses.any():
            at = x1 + (y[crosses] - y1) * (x2 - x1) / (y2 - y1)
            flip = np.zeros(len(near), bool)
            flip[np.flatnonzero(crosses)[x[crosses] < at]] = True
            inside ^= flip
    mask[near[inside]] = True
    return mask


class SelectViewBox(pg.ViewBox):
    """A ViewBox where shift-drag selects instead of panning: a box, or a free-hand lasso (`lasso` True)."""

    box_selected = Signal(QRectF, bool)  # the box in data coordinates; True when Ctrl adds to the selection
    lasso_selected = Signal(object, bool)  # the lasso's vertices [M, 2] in data coordinates; Ctrl adds

    def __init__(self) -> None:
        super().__init__()
        self.lasso = False
        self._lasso: list[QPointF] = []
        pen = pg.mkPen("#333333", width=1, style=Qt.PenStyle.DashLine)
        self._band = QGraphicsRectItem()
        self._outline = QGraphicsPathItem()
        for shape in (self._band, self._outline):
            shape.setPen(pen)
            shape.setBrush(pg.mkBrush(50, 50, 50, 30))
            shape.setZValue(1e9)
            shape.hide()
            self.addItem(shape, ignoreBounds=True)

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 - pyqtgraph override
        if not ev.modifiers() & Qt.KeyboardModifier.ShiftModifier or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        add = bool(ev.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if self.lasso:
            if ev.isStart():
                self._lasso = [self.mapToView(ev.buttonDownPos())]
            self._lasso.append(self.mapToView(ev.pos()))
            if ev.isFinish():
                self._outline.hide()
                self.lasso_selected.emit(np.array([(p.x(), p.y()) for p in self._lasso]), add)
                self._lasso = []
            else:
                self._outline.setPath(self._path())
                self._outline.show()
            return
        a, b = self.mapToView(ev.buttonDownPos()), self.mapToView(ev.pos())
        rect = QRectF(a, b).normalized()
        if ev.isFinish():
            self._band.hide()
            self.box_selected.emit(rect, add)
        else:
            self._band.setRect(rect)
            self._band.show()

    def _path(self) -> QPainterPath:
        path = QPainterPath(self._lasso[0])
        for p in self._lasso[1:]:
            path.lineTo(p)
        path.closeSubpath()
        return path
