"""Markers: what the model infers about an H&E patch's mIF markers, by retrieval from the open gallery's other
cases (its own case is left out). Each marker's z (against the gallery) with its bootstrap interval as a bar
with whiskers, and the mIF patches it came from: clicking one selects it in every view of the gallery.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cl_core.session import Session

from .jobs import Jobs
from .qt_theme import PALETTE

HINT = ("Open a tissue gallery (demo:tissue), select one H&E patch, then press 'Infer its markers'. The model "
        "never saw these markers for it: this is what its space suggests, not a measurement.")
SOURCE_ROLE = Qt.ItemDataRole.UserRole


class MarkersPanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        self.run_button = QPushButton("Infer its markers")
        self.run_button.setToolTip("From the selected H&E patch (and the text beside, when given), retrieve the "
                                   "nearest mIF patches of the gallery's other cases and average their markers")
        self.run_button.clicked.connect(self.run)
        self.text = QLineEdit()
        self.text.setPlaceholderText("the case's clinical text (optional), e.g. stage III breast carcinoma")
        self.text.setToolTip("Fused with the H&E similarity at weight 1 - w")
        self.k = QSpinBox()
        self.k.setRange(1, 100)
        self.k.setValue(5)
        self.k.setPrefix("k = ")
        self.k.setToolTip("How many mIF neighbours the profile is averaged over (softmax of their scores)")
        self.w = QDoubleSpinBox()
        self.w.setRange(0.0, 1.0)
        self.w.setSingleStep(0.1)
        self.w.setValue(0.8)
        self.w.setPrefix("w = ")
        self.w.setToolTip("Weight of the H&E similarity; the text gets 1 - w")
        self.summary = QLabel(HINT)
        self.summary.setWordWrap(True)
        self.view = pg.PlotWidget(title="inferred markers (z against the gallery; whiskers: 95% bootstrap)")
        self.plot = self.view.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setLabel("left", "z")
        self.plot.showGrid(y=True, alpha=0.2)
        self.neighbours = QListWidget()
        self.neighbours.setToolTip("The mIF patches the profile came from, best first; click to select one")
        self.neighbours.itemClicked.connect(self._neighbour_clicked)
        top = QHBoxLayout()
        top.addWidget(self.run_button)
        top.addWidget(self.text, 1)
        top.addWidget(self.k)
        top.addWidget(self.w)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.view)
        split.addWidget(self.neighbours)
        split.setSizes([600, 300])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)
        session.gallery_changed.connect(self._enable)
        session.gallery_selection_changed.connect(lambda _rows: self._enable())
        session.markers_changed.connect(self.refresh)
        self.refresh()

    def _selected_he(self) -> int | None:
        index, rows = self.session.index, sorted(self.session.gallery_selection)
        if index is None or len(rows) != 1 or index.rows[rows[0]].modality.value != "image":
            return None
        return rows[0]

    def _enable(self) -> None:
        self.run_button.setEnabled(self._selected_he() is not None)

    def run(self) -> None:
        row = self._selected_he()
        if row is not None:
            self.jobs.infer_markers(row, self.text.text().strip() or None, self.k.value(), self.w.value())

    def refresh(self) -> None:
        self._enable()
        self.plot.clear()
        self.neighbours.clear()
        got = self.session.markers
        if got is None:
            self.summary.setText(HINT)
            self.plot.getAxis("bottom").setTicks(None)
            return
        inf = got.inferred
        x = np.arange(len(inf.markers))
        brushes = [PALETTE[i % len(PALETTE)] for i in x]
        self.plot.addItem(pg.BarGraphItem(x=x, height=inf.value, width=0.6, brushes=brushes))
        self.plot.addItem(pg.ErrorBarItem(x=x, y=inf.value, top=inf.high - inf.value, bottom=inf.value - inf.low,
                                          beam=0.2, pen=pg.mkPen("#333333", width=1.5)))
        self.plot.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#888888")))
        self.plot.getAxis("bottom").setTicks([[(i, m) for i, m in enumerate(inf.markers)]])
        how = f"H&E (w = {got.w:g}) + “{got.text}”" if got.with_text else "H&E alone"
        self.summary.setText(f"{Path(got.he).name}: inferred from {how}, the {len(inf.neighbours)} nearest of "
                             f"{got.reference_count} mIF patches of the other cases. What the model's space "
                             "suggests, not a measurement.")
        for source, score, weight in zip(got.neighbour_sources, inf.scores, inf.weights, strict=True):
            item = QListWidgetItem(f"{weight:.2f}  {Path(source).name}  (score {score:.3f})")
            item.setData(SOURCE_ROLE, source)
            item.setToolTip(source)
            self.neighbours.addItem(item)

    def _neighbour_clicked(self, item: QListWidgetItem) -> None:
        index, source = self.session.index, item.data(SOURCE_ROLE)
        if index is None or source is None:
            return
        part = next((p for p in index.parts.values() if p.modality.value == "multichannel"), None)
        rows = range(part.start, part.end) if part is not None else range(len(index.rows))
        found = next((r for r in rows if index.rows[r].source == source), None)
        if found is not None:
            self.session.select_gallery([found])
