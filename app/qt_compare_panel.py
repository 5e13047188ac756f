"""Compare: a second checkpoint beside the open model, on the same gallery and the same query. Both result
lists side by side with their overlap@k (items in both lists are shaded), and what `eval` and `diagnose`
measure for each model in one table. Clicking a result of either list selects that item in every view of the
gallery (the map, the results), so the two models' answers can be found in the first model's map.
"""

from __future__ import annotations

from pathlib import Path

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

from cl_core.actions import Comparison, Hit
from cl_core.session import Session

from .jobs import Jobs

HINT = ("Open a gallery, then a second checkpoint: every search runs through both models, and their "
        "figures are measured side by side.")
SHARED = QColor(255, 196, 0, 70)  # an item both models returned
ROW_ROLE = Qt.ItemDataRole.UserRole


def hit_name(hit: Hit) -> str:
    text = hit.text if hit.text is not None else Path(hit.source).name
    return text if len(text) <= 70 else text[:69] + "…"


def hit_key(hit: Hit) -> tuple[str, str, str]:
    return hit.modality, hit.source, hit.text or ""


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
        self.figures.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

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
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(lists)
        split.addWidget(self.figures)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.overlap)
        layout.addWidget(split, 1)
        session.gallery_changed.connect(self._enable)
        session.comparison_changed.connect(self.refresh)
        session.results_changed.connect(self.refresh)
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
