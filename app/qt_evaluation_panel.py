"""Evaluation: how well the model retrieves the open gallery's paired samples (Recall@1/5/10 and median rank
for every ordered modality pair, as a table and a bar chart) and how it classifies the gallery's labelled
items zero-shot (accuracy, and the confusion matrix as a heatmap with the class names).

"Evaluate" runs `clens eval`'s measures in a worker on the vectors already embedded (only the prompts run
through the model); the figures come back through the Session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cl_core.actions import DEFAULT_TEMPLATES
from cl_core.session import Session

from .jobs import Jobs
from .qt_theme import PALETTE
from .qt_util import export_figure, export_json, save_as

HINT = ("Open a gallery whose samples pair several modalities (a manifest with a sample column) or carry labels, "
        "then press 'Evaluate'.")
KS = ("R@1", "R@5", "R@10")
COLUMNS = ("queries → items", *KS, "median rank", "pairs")
MAX_NAMED = 40  # class names down the side up to this many classes
SEPARATOR = " | "


def arrow(direction: str) -> str:
    return direction.replace("->", " → ")


def headline(evaluation: Any) -> str:
    """What a person reads first: the best and worst direction, and each zero-shot accuracy."""
    parts = []
    r = evaluation.retrieval
    if r:
        best = max(r, key=lambda d: r[d]["R@1"])
        worst = min(r, key=lambda d: r[d]["R@1"])
        parts.append(f"Retrieval of a sample's own item among {r[best]['n']:,}: best {arrow(best)} "
                     f"R@1 {r[best]['R@1']:.2f}" + (f", worst {arrow(worst)} R@1 {r[worst]['R@1']:.2f}"
                                                    if worst != best else "") + ".")
    for m, z in evaluation.zero_shot.items():
        parts.append(f"Zero-shot {m}: {z['accuracy']:.0%} right over {len(z['labels'])} labels "
                     f"(chance {1 / len(z['labels']):.0%}).")
    if not parts:
        parts.append("Nothing to measure: the gallery has no samples in two modalities and no labels.")
    return " ".join(parts)


class EvaluationPanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        self.run_button = QPushButton("Evaluate")
        self.run_button.setToolTip("Recall@K for every ordered modality pair of the gallery's paired samples, "
                                   "and zero-shot classification of its labelled items")
        self.run_button.clicked.connect(self.run)
        self.templates = QLineEdit(SEPARATOR.join(DEFAULT_TEMPLATES))
        self.templates.setToolTip("Zero-shot prompts, separated by ' | ': {} is where a label goes; a class's "
                                  "vector is the mean of its prompts' (CLIP's prompt ensembling)")
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the figures as JSON, or the chart and matrix as PNG/SVG")
        self.export_button.clicked.connect(self._export_dialog)
        self.summary = QLabel(HINT)
        self.summary.setWordWrap(True)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setToolTip("Each query is a sample's item of one modality; its own item of the other "
                              "modality is the one right answer among all that modality's items")
        self.bars_view = pg.PlotWidget(title="Recall@K: the right item among the first K")
        self.bars_view.setToolTip("Recall@K: the share of queries whose own item is among the first K")
        self.bars = self.bars_view.getPlotItem()
        self.bars.invertY(True)
        self.bars.setMenuEnabled(False)
        self.bars.getAxis("bottom").enableAutoSIPrefix(False)
        self.bars.setLabel("bottom", "share of queries")
        self.bars.addLegend(offset=(-10, 10), labelTextSize="9pt", colCount=3)

        self.zs_modality = QComboBox()
        self.zs_modality.setToolTip("Which modality's labelled items were classified")
        self.zs_modality.currentIndexChanged.connect(lambda _i: self._draw_confusion())
        self.accuracy = QLabel("")
        self.matrix_view = pg.GraphicsLayoutWidget()
        self.matrix = self.matrix_view.addPlot(title="Zero-shot: true label (rows) → predicted (columns)")
        self.matrix.setAspectLocked(True)
        self.matrix.invertY(True)
        self.matrix.hideButtons()
        self.matrix.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.matrix.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get("viridis"),
                                        label="share of the true label", interactive=False)
        self.colorbar.setImageItem(self.image, insert_in=self.matrix)
        self.hover = QLabel("")
        self.hover.setWordWrap(True)
        self.confusion = np.zeros((0, 0), np.int64)
        self.labels: list[str] = []
        self.matrix_view.scene().sigMouseMoved.connect(self._mouse_moved)

        top = QHBoxLayout()
        top.addWidget(self.run_button)
        top.addWidget(QLabel("Prompts:"))
        top.addWidget(self.templates, 1)
        top.addWidget(self.export_button)
        left = QSplitter(Qt.Orientation.Horizontal)
        left.addWidget(self.table)
        left.addWidget(self.bars_view)
        left.setSizes([420, 420])
        right = QWidget()
        side = QVBoxLayout(right)
        side.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Zero-shot on"))
        row.addWidget(self.zs_modality)
        row.addWidget(self.accuracy, 1)
        side.addLayout(row)
        side.addWidget(self.matrix_view, 1)
        side.addWidget(self.hover)
        self.tabs = QTabWidget()
        self.tabs.addTab(left, "Retrieval")
        self.tabs.addTab(right, "Zero-shot")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.tabs, 1)
        session.gallery_changed.connect(self._enable)
        session.evaluation_changed.connect(self.refresh)
        self.refresh()

    def _enable(self) -> None:
        self.run_button.setEnabled(self.session.gallery is not None)
        self.export_button.setEnabled(self.session.evaluation is not None)

    def prompts(self) -> list[str]:
        return [t.strip() for t in self.templates.text().split(SEPARATOR.strip()) if t.strip()]

    def run(self) -> None:
        self.jobs.evaluate(self.prompts() or None)

    # ---- drawing ---------------------------------------------------------------------------------------

    def refresh(self) -> None:
        self._enable()
        evaluation = self.session.evaluation
        self.table.setRowCount(0)
        self.bars.clear()
        if self.bars.legend is not None:
            self.bars.legend.clear()
        self.zs_modality.blockSignals(True)
        self.zs_modality.clear()
        self.zs_modality.blockSignals(False)
        if evaluation is None:
            self.summary.setText(HINT)
            self._draw_confusion()
            return
        self.summary.setText(headline(evaluation))
        self._fill_table(evaluation.retrieval)
        self._draw_bars(evaluation.retrieval)
        self.zs_modality.blockSignals(True)
        for m in evaluation.zero_shot:
            self.zs_modality.addItem(m)
        self.zs_modality.blockSignals(False)
        self._draw_confusion()

    def _fill_table(self, retrieval: dict[str, dict[str, float]]) -> None:
        self.table.setRowCount(len(retrieval))
        for r, (direction, d) in enumerate(retrieval.items()):
            values = [arrow(direction), *(f"{d[k]:.3f}" for k in KS), f"{d['median_rank']:g}", f"{d['n']:,}"]
            for c, text in enumerate(values):
                cell = QTableWidgetItem(text)
                if c:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, cell)

    def _draw_bars(self, retrieval: dict[str, dict[str, float]]) -> None:
        """Horizontal bars, a group per direction (named down the side), one bar per K."""
        directions = list(retrieval)
        thick = 0.8 / len(KS)
        for i, k in enumerate(KS):
            y = np.arange(len(directions)) + (i - (len(KS) - 1) / 2) * thick
            values = [retrieval[d][k] for d in directions]
            self.bars.addItem(pg.BarGraphItem(x0=0, y=y, height=thick * 0.9, width=values, brush=PALETTE[i], name=k))
        self.bars.getAxis("left").setTicks([[(i, arrow(d)) for i, d in enumerate(directions)]])
        if directions:
            # the legend sits in the room left above the first group
            self.bars.setYRange(-1.7, len(directions) - 0.4, padding=0)
            self.bars.setXRange(0, 1.0, padding=0.02)

    def _draw_confusion(self) -> None:
        evaluation = self.session.evaluation
        m = self.zs_modality.currentText()
        z = evaluation.zero_shot.get(m) if evaluation is not None else None
        if z is None:
            self.image.clear()
            self.confusion, self.labels = np.zeros((0, 0), np.int64), []
            self.accuracy.setText("" if evaluation is None else "no labelled items to classify")
            self.matrix.getAxis("left").setTicks(None)
            self.matrix.getAxis("bottom").setTicks(None)
            return
        self.confusion, self.labels = np.asarray(z["confusion"], np.int64), list(z["labels"])
        n = len(self.labels)
        rows = self.confusion.sum(axis=1, keepdims=True)
        share = np.divide(self.confusion, rows, out=np.zeros(self.confusion.shape), where=rows > 0)
        self.image.setImage(share.astype(np.float32))
        self.image.setRect(QRectF(0, 0, n, n))
        self.colorbar.setLevels(values=(0.0, 1.0))
        self.matrix.setRange(xRange=(0, n), yRange=(0, n), padding=0.02)
        named = n <= MAX_NAMED
        left = self.matrix.getAxis("left")
        left.setTicks([[(i + 0.5, name) for i, name in enumerate(self.labels)]] if named else None)
        # sized for the longest name now: an axis drawn first while its tab is hidden would not widen itself
        longest = max((QFontMetrics(self.font()).horizontalAdvance(name) for name in self.labels), default=0)
        left.setWidth(longest + 16 if named else None)
        self.matrix.getAxis("bottom").setTicks([[(i + 0.5, str(i + 1)) for i in range(n)]] if named else None)
        self.accuracy.setText(f"accuracy {z['accuracy']:.3f} on {z['n']:,} items, {n} labels "
                              f"(chance {1 / n:.3f}); columns numbered as the rows")
        self.hover.setText("Hover a cell: which label was taken for which, how often.")

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        n = len(self.labels)
        if not n or not self.matrix.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.matrix.vb.mapSceneToView(scene_pos)
        col, row = int(np.floor(p.x())), int(np.floor(p.y()))
        return (row, col) if 0 <= row < n and 0 <= col < n else None

    def describe(self, row: int, col: int) -> str:
        count, total = int(self.confusion[row, col]), int(self.confusion[row].sum())
        return (f"true “{self.labels[row]}” predicted as “{self.labels[col]}”: {count} of {total}"
                + (" (right)" if row == col else ""))

    def _mouse_moved(self, pos: QPointF) -> None:
        cell = self.cell_at(pos)
        if cell is not None:
            self.hover.setText(self.describe(*cell))

    # ---- export ----------------------------------------------------------------------------------------

    def export_to(self, path: str | Path) -> Path:
        """The figures as JSON, or the chart beside the matrix as PNG/SVG, by the file's suffix."""
        evaluation = self.session.evaluation
        if evaluation is None:
            raise ValueError("nothing evaluated yet")
        path = Path(path)
        if path.suffix.lower() == ".json":
            return export_json(path, evaluation.to_dict())
        return export_figure(self.tabs.currentWidget(), path, "Contrastive Lens evaluation")

    def _export_dialog(self) -> None:
        if self.session.evaluation is not None:
            save_as(self, "Export the evaluation", "evaluation.json", "JSON (*.json);;PNG image (*.png);;SVG (*.svg)",
                    self.export_to, self.jobs.error.emit)
