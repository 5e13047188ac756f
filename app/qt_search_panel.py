"""Gallery search: open a gallery (folder, manifest or the demo's), query it with text and/or selected
inputs of any modality, see ranked results with raw and calibrated scores, and cut off what is not relevant."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.jobs import Jobs
from cl_core.demo.galleries import DEMOS
from cl_core.modality import Modality
from cl_core.search.query import FUSIONS
from cl_core.session import Session

COLUMNS = ["#", "Score", "z", "Modality", "Sample", "Item"]


class SearchPanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        self.open_folder = QPushButton("Open gallery folder…")
        self.open_manifest = QPushButton("Open manifest…")
        self.open_demo = QPushButton("Demo gallery")
        self.open_folder.clicked.connect(self._pick_folder)
        self.open_manifest.clicked.connect(self._pick_manifest)
        self.open_demo.clicked.connect(self._demo_gallery)
        self.summary = QLabel("No gallery: open a folder or a CSV/Parquet manifest.")
        self.summary.setWordWrap(True)
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search the gallery: type a text, and/or select inputs on the left")
        self.query.returnPressed.connect(self.run_search)
        self.use_selection = QCheckBox("with selected inputs")
        self.use_selection.setChecked(True)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.run_search)
        self.target = QComboBox()
        self.fusion = QComboBox()
        self.fusion.addItems(list(FUSIONS))
        self.fusion.setToolTip("How several query items combine: weighted mean, Symile's multilinear inner "
                               "product, or GRAM volume (three or more modalities)")
        self.k = QSpinBox()
        self.k.setRange(1, 1000)
        self.k.setValue(10)
        self.only_relevant = QCheckBox("only z ≥")
        self.min_z = QDoubleSpinBox()
        self.min_z.setRange(-10.0, 50.0)
        self.min_z.setSingleStep(0.5)
        self.min_z.setValue(2.5)
        self.only_relevant.setToolTip("Drop results that do not stand out from this query's typical score "
                                      "in the gallery (calibrated z-score), so a search can say 'nothing relevant'")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel("")

        top = QHBoxLayout()
        for button in (self.open_folder, self.open_manifest, self.open_demo):
            top.addWidget(button)
        top.addStretch(1)
        query = QHBoxLayout()
        query.addWidget(self.query, 1)
        query.addWidget(self.use_selection)
        query.addWidget(self.search_button)
        options = QHBoxLayout()
        labelled: tuple[tuple[str, QWidget], ...] = (("in", self.target), ("fusion", self.fusion), ("top", self.k))
        for label, widget in labelled:
            options.addWidget(QLabel(label))
            options.addWidget(widget)
        options.addWidget(self.only_relevant)
        options.addWidget(self.min_z)
        options.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addLayout(query)
        layout.addLayout(options)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty)

        session.model_changed.connect(lambda _m: self._refresh_gallery())
        session.gallery_changed.connect(self._refresh_gallery)
        session.results_changed.connect(self._show_results)
        self._refresh_gallery()

    # ---- gallery ---------------------------------------------------------------------------------

    def _demo_name(self) -> str | None:
        model = self.session.model
        if model is None:
            return None
        here = Path(model.source).resolve()
        return next((name for name, d in DEMOS.items() if d.model.resolve() == here), None)

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a gallery folder")
        if folder:
            self.jobs.open_gallery(folder)

    def _pick_manifest(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a gallery manifest", "",
                                              "Manifests (*.csv *.tsv *.parquet);;All files (*)")
        if path:
            self.jobs.open_gallery(path)

    def _demo_gallery(self) -> None:
        name = self._demo_name()
        if name is not None:
            self.jobs.open_gallery(f"demo:{name}")

    def _refresh_gallery(self) -> None:
        has_model = self.session.model is not None
        for w in (self.open_folder, self.open_manifest):
            w.setEnabled(has_model)
        self.open_demo.setEnabled(self._demo_name() is not None)
        index, gallery = self.session.index, self.session.gallery
        self.target.clear()
        self.target.addItem("any modality", None)
        if index is None or gallery is None:
            self.summary.setText("No gallery: open a folder or a CSV/Parquet manifest." if has_model
                                 else "Open a model, then a gallery to search.")
            self.search_button.setEnabled(False)
            return
        for m in index.parts:
            self.target.addItem(m.value, m.value)
        parts = "; ".join(
            f"{p.modality.value}: {p.end - p.start:,} ({p.built.kind}, recall@10 "
            f"{'n/a' if p.recall_at_10 is None else f'{p.recall_at_10:.3f}'})" for p in index.parts.values())
        bad = len(gallery.failures)
        self.summary.setText(f"<b>{gallery.gallery.name}</b>: {len(gallery.rows):,} items — {parts}"
                             + (f" — {bad} could not be used (see Messages)" if bad else ""))
        self.search_button.setEnabled(True)

    # ---- search ----------------------------------------------------------------------------------

    def run_search(self) -> None:
        value = self.target.currentData()
        target = Modality(value) if value else None
        rows = sorted(self.session.selection) if self.use_selection.isChecked() else []
        self.jobs.search([self.query.text()], rows, target, self.k.value(), self.fusion.currentText(),
                         self.min_z.value() if self.only_relevant.isChecked() else None)

    def _show_results(self) -> None:
        hits = self.session.results
        self.table.setRowCount(len(hits))
        for r, h in enumerate(hits):
            what = h.text if h.text else Path(h.source).name
            cells = [str(h.rank), f"{h.score:+.4f}", f"{h.z:.2f}", h.modality, h.sample_id, what]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(h.text or h.source)
                if c in (0, 1, 2):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.empty.setText("" if hits or self.session.index is None else "Nothing relevant.")
