"""Markers: what the model infers about an H&E patch's mIF markers, by retrieval from the open gallery's other
cases (its own case is left out). Each marker's z (against the gallery) with its bootstrap interval as a bar
with whiskers, and the mIF patches it came from: clicking one selects it in every view of the gallery.

*What if*: the same for a case's H&E patches (the selection) with the text edited (stage II -> IV, say): each
marker's mean shift with its interval, starred where the paired test (Holm-corrected) and the interval agree.
The tab says plainly that these are hypotheses about the model, not mechanisms of the disease.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cl_core.actions import CAVEAT
from cl_core.session import Session

from .jobs import Jobs
from .qt_theme import PALETTE

HINT = ("Open a tissue gallery (demo:tissue), select one H&E patch, then press 'Infer its markers'. The model "
        "never saw these markers for it: this is what its space suggests, not a measurement.")
SOURCE_ROLE = Qt.ItemDataRole.UserRole
WHAT_IF_HINT = ("Select a case's H&E patches (one or more), give its clinical text above and the edited text here "
                "(e.g. stage II -> stage IV), then 'What if'. " + CAVEAT)


def bar_plot(title: str, left: str) -> tuple[pg.PlotWidget, pg.PlotItem]:
    view = pg.PlotWidget(title=title)
    plot = view.getPlotItem()
    plot.setMenuEnabled(False)
    plot.getAxis("left").enableAutoSIPrefix(False)
    plot.setLabel("left", left)
    plot.showGrid(y=True, alpha=0.2)
    return view, plot


def draw_bars(plot: pg.PlotItem, names: list[str], value: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
    x = np.arange(len(names))
    brushes = [PALETTE[i % len(PALETTE)] for i in x]
    plot.addItem(pg.BarGraphItem(x=x, height=value, width=0.6, brushes=brushes))
    plot.addItem(pg.ErrorBarItem(x=x, y=value, top=high - value, bottom=value - low, beam=0.2,
                                 pen=pg.mkPen("#333333", width=1.5)))
    plot.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#888888")))
    plot.getAxis("bottom").setTicks([[(i, m) for i, m in enumerate(names)]])


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
        self.target = QComboBox()
        self.target.addItem("mean intensity", "mean")
        self.target.addItem("positive cells", "positive")
        self.target.setToolTip("What a marker's value is: the patch's mean channel intensity, or the fraction of "
                               "its cells positive for the marker (cells found as nuclear-stain peaks)")
        self.summary = QLabel(HINT)
        self.summary.setWordWrap(True)
        self.view, self.plot = bar_plot("inferred markers (z against the gallery; whiskers: 95% bootstrap)", "z")
        self.neighbours = QListWidget()
        self.neighbours.setToolTip("The mIF patches the profile came from, best first; click to select one")
        self.neighbours.itemClicked.connect(self._neighbour_clicked)
        top = QHBoxLayout()
        top.addWidget(self.run_button)
        top.addWidget(self.text, 1)
        top.addWidget(self.k)
        top.addWidget(self.w)
        top.addWidget(self.target)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.view)
        split.addWidget(self.neighbours)
        split.setSizes([600, 300])
        profile = QWidget()
        inner = QVBoxLayout(profile)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.summary)
        inner.addWidget(split, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(profile, "Inferred profile")
        self.tabs.addTab(self._what_if(), "What if the text said…")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        session.gallery_changed.connect(self._enable)
        session.gallery_selection_changed.connect(lambda _rows: self._enable())
        session.markers_changed.connect(self.refresh)
        session.counterfactual_changed.connect(self.refresh_shift)
        self.refresh()
        self.refresh_shift()

    def _what_if(self) -> QWidget:
        page = QWidget()
        self.edited = QLineEdit()
        self.edited.setPlaceholderText("the edited text, e.g. the same words with stage IV")
        self.edited.setToolTip("Only the text changes; the tissue stays the same")
        self.edited.textChanged.connect(lambda _t: self._enable())
        self.text.textChanged.connect(lambda _t: self._enable())
        self.copy_button = QPushButton("Copy the text")
        self.copy_button.setToolTip("Start the edit from the case's text above")
        self.copy_button.clicked.connect(lambda: self.edited.setText(self.text.text()))
        self.what_if_button = QPushButton("What if")
        self.what_if_button.setToolTip("Infer the selected patches' profiles with both texts (H&E 0.6 / text 0.4, "
                                       "top 50 weighted by score) and show each marker's shift")
        self.what_if_button.clicked.connect(self.run_what_if)
        row = QHBoxLayout()
        row.addWidget(self.edited, 1)
        row.addWidget(self.copy_button)
        row.addWidget(self.what_if_button)
        self.shift_summary = QLabel(WHAT_IF_HINT)
        self.shift_summary.setWordWrap(True)
        self.shift_view, self.shift_plot = bar_plot(
            "shift of the inferred markers (edited - original; whiskers: 95% bootstrap; * called)", "Δz")
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.shift_summary)
        layout.addWidget(self.shift_view, 1)
        return page

    def _selected_patches(self) -> list[int]:
        index = self.session.index
        if index is None:
            return []
        return [r for r in sorted(self.session.gallery_selection) if index.rows[r].modality.value == "image"]

    def run_what_if(self) -> None:
        rows, text, edited = self._selected_patches(), self.text.text().strip(), self.edited.text().strip()
        if rows and text and edited and text != edited:
            self.jobs.counterfactual(rows, text, edited, target=self.target.currentData())

    def refresh_shift(self) -> None:
        self._enable()
        self.shift_plot.clear()
        got = self.session.counterfactual
        if got is None:
            self.shift_summary.setText(WHAT_IF_HINT)
            self.shift_plot.getAxis("bottom").setTicks(None)
            return
        names = [m + (" *" if s else "") for m, s in zip(got.markers, got.significant, strict=True)]
        draw_bars(self.shift_plot, names, got.mean, got.low, got.high)
        self.shift_summary.setText(
            f"{len(got.patches)} H&E patch(es), “{got.text}” → “{got.edited_text}”: mean shift per marker "
            f"(interval over the {got.interval_over}; * where the paired Wilcoxon test, Holm-corrected, and the "
            f"interval both say it moved). {CAVEAT}")

    def _selected_he(self) -> int | None:
        index, rows = self.session.index, sorted(self.session.gallery_selection)
        if index is None or len(rows) != 1 or index.rows[rows[0]].modality.value != "image":
            return None
        return rows[0]

    def _enable(self) -> None:
        self.run_button.setEnabled(self._selected_he() is not None)
        if hasattr(self, "what_if_button"):
            text, edited = self.text.text().strip(), self.edited.text().strip()
            self.what_if_button.setEnabled(bool(self._selected_patches() and text and edited and text != edited))

    def run(self) -> None:
        row = self._selected_he()
        if row is not None:
            self.jobs.infer_markers(row, self.text.text().strip() or None, self.k.value(), self.w.value(),
                                    self.target.currentData())

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
        draw_bars(self.plot, inf.markers, inf.value, inf.low, inf.high)
        how = f"H&E (w = {got.w:g}) + “{got.text}”" if got.with_text else "H&E alone"
        what = "mean intensity" if got.target == "mean" else "positive-cell fraction"
        self.summary.setText(f"{Path(got.he).name}: {what} (z against the gallery) inferred from {how}, the "
                             f"{len(inf.neighbours)} nearest of {got.reference_count} mIF patches of the other "
                             "cases. What the model's space suggests, not a measurement.")
        if got.raw is not None:  # the bars' own units, under each marker's name
            names = [f"{m}\n{r:.0f} cells" if m == got.nuclear else
                     (f"{m}\n{r:.0f}" if got.target == "mean" else f"{m}\n{100 * r:.0f}% +")
                     for m, r in zip(inf.markers, got.raw, strict=True)]
            self.plot.getAxis("bottom").setTicks([[(i, n) for i, n in enumerate(names)]])
            self.plot.getAxis("bottom").setHeight(46)  # room for the second line under each name
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
