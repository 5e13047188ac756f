"""Compare: a second checkpoint beside the open model, on the same gallery and the same query. Both result
lists side by side with their overlap@k (items in both lists are shaded), and what `eval` and `diagnose`
measure for each model in one table, and the second model's own map of the gallery. Clicking a result of either
list or a point of that map selects the item in every view of the gallery (the first model's map, the
results), and what is selected anywhere is ringed in the second model's map: both spaces, one selection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cl_core.actions import Comparison, Hit, hit_key
from cl_core.session import Session

from .jobs import Jobs
from .qt_theme import PALETTE

HINT = ("Open a gallery, then a second checkpoint: every search runs through both models, and their "
        "figures are measured side by side.")
SHARED = QColor(255, 196, 0, 70)  # an item both models returned
ROW_ROLE = Qt.ItemDataRole.UserRole
MAP_POINTS = 50_000  # the second model's map draws at most this many points (evenly spaced); selected always


def hit_name(hit: Hit) -> str:
    text = hit.text if hit.text is not None else Path(hit.source).name
    return text if len(text) <= 70 else text[:69] + "…"


class ComparePanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        self.open_button = QPushButton("Open a second model…")
        self.open_button.setToolTip("A checkpoint folder or file to compare with the open model on this gallery")
        self.open_button.clicked.connect(self._open_dialog)
        self.close_button = QPushButton("Close it")
        self.close_button.setToolTip("Forget the second model: searches run through the open model only")
        self.close_button.clicked.connect(self.jobs.close_comparison)
        self.title = QLabel(HINT)
        self.title.setWordWrap(True)
        self.overlap = QLabel("")
        self.overlap.setObjectName("overlapLabel")
        self.first = self._hit_table()
        self.second = self._hit_table()
        self.first.itemSelectionChanged.connect(lambda: self._selected(self.first, second=False))
        self.second.itemSelectionChanged.connect(lambda: self._selected(self.second, second=True))
        self.figures = QTableWidget(0, 3)
        self.figures.setHorizontalHeaderLabels(["Figure (hover: what it is)", "first", "second"])
        self.figures.verticalHeader().setVisible(False)
        self.figures.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.figures.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.figures.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.figures.setWordWrap(False)

        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.close_button)
        top.addWidget(self.title, 1)
        self.first_name, self.second_name = QLabel("first model"), QLabel("second model")
        lists = QSplitter(Qt.Orientation.Horizontal)
        for label, table in ((self.first_name, self.first), (self.second_name, self.second)):
            box = QWidget()
            col = QVBoxLayout(box)
            col.setContentsMargins(0, 0, 0, 0)
            col.addWidget(label)
            col.addWidget(table, 1)
            lists.addWidget(box)
        self.map_view = pg.PlotWidget(title="second model's map (PCA)")
        self.map_view.setToolTip("The gallery as the second model lays it out: coloured by modality; the "
                                 "items selected anywhere are ringed, a click selects one everywhere")
        self.map = self.map_view.getPlotItem()
        self.map.hideAxis("left")
        self.map.hideAxis("bottom")
        self.map.setMenuEnabled(False)
        self.map.addLegend(offset=(-5, 5), labelTextSize="8pt")
        self.points = pg.ScatterPlotItem(size=5, pen=None)
        self.ringed = pg.ScatterPlotItem(size=11, pen=pg.mkPen("#111111", width=1.5), brush=None)
        self.map.addItem(self.points)
        self.map.addItem(self.ringed)
        self.points.sigClicked.connect(self._point_clicked)
        self.drawn = np.zeros(0, np.int64)  # the second index's rows drawn, in the scatter's order
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.figures)
        bottom.addWidget(self.map_view)
        bottom.setSizes([500, 360])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(lists)
        split.addWidget(bottom)
        split.setSizes([250, 250])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.overlap)
        layout.addWidget(split, 1)
        session.gallery_changed.connect(self._enable)
        session.comparison_changed.connect(self.refresh)
        session.results_changed.connect(self.refresh)
        session.gallery_selection_changed.connect(lambda _rows: self._ring_selection())
        self._mapped: Any = None  # the map drawn (drawn again only when it changes)
        self.refresh()

    @staticmethod
    def _hit_table() -> QTableWidget:
        table = QTableWidget(0, 4)
        table.setHorizontalHeaderLabels(["#", "item", "modality", "score"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        table.setWordWrap(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        return table

    def _enable(self) -> None:
        self.open_button.setEnabled(self.session.gallery is not None)
        self.close_button.setEnabled(self.session.comparison is not None or self.jobs.second_model is not None)

    def _open_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a second model (a checkpoint folder)")
        if path:
            self.jobs.open_comparison(path)

    # ---- drawing ---------------------------------------------------------------------------------------

    def refresh(self) -> None:
        self._enable()
        c = self.session.comparison
        model = self.session.model
        self.first_name.setText((f"first: {model.name}" if model is not None else "first model")
                                + (" — none above the relevance threshold; the closest"
                                   if c is not None and self.session.results_below_threshold else ""))
        below = c is not None and c.results is not None and not c.results.hits and bool(c.results.closest)
        self.second_name.setText((f"second: {c.model.name}" if c is not None else "second model")
                                 + (" — none above the relevance threshold; the closest" if below else ""))
        self.title.setText(HINT if c is None else f"Comparing {model.name if model else '?'} with {c.model.name} "
                           f"on {Path(c.source).name}.")
        first = list(self.session.results) if c is not None else []
        current = c is not None and c.results is not None and c.results.request == self.session.query
        second = list(c.results.shown) if current and c is not None and c.results is not None else []
        shared = {hit_key(h) for h in first} & {hit_key(h) for h in second}
        self._fill(self.first, first, shared)
        self._fill(self.second, second, shared)
        if c is None:
            self.overlap.setText("")
        elif self.session.query is None:
            self.overlap.setText("Search (Gallery search panel) to see both models' results.")
        elif not current:
            self.overlap.setText("searching with the second model…")
        else:
            o = c.overlap
            share = "n/a" if o.get("overlap") is None else f"{o['overlap']:.2f}"
            self.overlap.setText(f"overlap@{o.get('k')}: {o.get('shared')} of the first {o.get('k')} items in both "
                                 f"lists ({share}); shaded: returned by both")
        self._fill_figures(c)
        self._draw_map(c)

    def _draw_map(self, c: Comparison | None) -> None:
        coords = c.coords if c is not None else None
        if coords is self._mapped:
            return
        self._mapped = coords
        self.points.setData([])
        if self.map.legend is not None:
            self.map.legend.clear()
        self.map.setTitle("second model's map (PCA)")
        if c is None or coords is None or not len(coords):
            self.drawn = np.zeros(0, np.int64)
            self._ring_selection()
            return
        n = len(coords)
        step = max(1, -(-n // MAP_POINTS))
        self.drawn = np.arange(0, n, step)
        colours = np.empty(n, object)
        for i, part in enumerate(c.index.parts.values()):
            colour = PALETTE[i % len(PALETTE)]
            colours[part.start:part.end] = colour
            if self.map.legend is not None:
                self.map.legend.addItem(pg.ScatterPlotItem(size=8, brush=pg.mkBrush(colour), pen=None),
                                        part.modality.value)
        brushes = [pg.mkBrush(colour) for colour in colours[self.drawn]]
        self.points.setData(x=coords[self.drawn, 0], y=coords[self.drawn, 1], brush=brushes, data=self.drawn)
        if step > 1:
            self.map.setTitle(f"second model's map (PCA): every {step}th of {n:,} items drawn")
        self._ring_selection()

    def _ring_selection(self) -> None:
        c = self.session.comparison
        rows = c.second_rows(sorted(self.session.gallery_selection)) if c is not None and c.coords is not None else []
        if c is None or c.coords is None or not rows:
            self.ringed.setData([])
        else:
            self.ringed.setData(x=c.coords[rows, 0], y=c.coords[rows, 1])

    def _point_clicked(self, _item: Any, points: Any, *_: Any) -> None:
        c = self.session.comparison
        if c is None or not len(points):
            return
        found = c.first_row(int(points[0].data()))
        if found is not None:
            self.session.select_gallery([found])

    def _fill(self, table: QTableWidget, hits: list[Hit], shared: set[tuple[str, str, str]]) -> None:
        table.blockSignals(True)
        table.setRowCount(len(hits))
        for r, h in enumerate(hits):
            cells = [str(h.rank), hit_name(h), h.modality, f"{h.score:.4f}"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(ROW_ROLE, h.row)
                item.setToolTip(h.text or h.source)
                if hit_key(h) in shared:
                    item.setBackground(QBrush(SHARED))
                table.setItem(r, col, item)
        table.blockSignals(False)

    def _fill_figures(self, c: Comparison | None) -> None:
        rows = c.figures if c is not None else []
        self.figures.setRowCount(len(rows))
        for r, (name, a, b, definition) in enumerate(rows):
            for col, text in enumerate((name, "n/a" if a is None else f"{a:.3f}", "n/a" if b is None else f"{b:.3f}")):
                item = QTableWidgetItem(text)
                item.setToolTip(definition)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.figures.setItem(r, col, item)

    def _selected(self, table: QTableWidget, second: bool) -> None:
        """A result of either list selects the same item in every view of the gallery (the first model's)."""
        items = table.selectedItems()
        c = self.session.comparison
        if not items or c is None:
            return
        row = int(items[0].data(ROW_ROLE))
        found = c.first_row(row) if second else row
        if found is not None:
            self.session.select_gallery([found])
