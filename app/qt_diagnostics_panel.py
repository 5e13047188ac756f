"""Diagnostics: the open gallery's geometry as a person reads it — how far apart the modalities sit (the gap),
how many directions each modality really uses (spectrum and effective rank), how cosines spread within and
across modalities, and which items crowd into everyone's results (hubs).

"Measure the open gallery" runs the measurement in a worker; the figures come back through the Session. Every
number's tooltip says what it is; a hub clicked in the list is selected in every view of the gallery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cl_core.session import Session

from .jobs import Jobs
from .qt_theme import PALETTE
from .qt_util import export_figure, export_json, save_as

HINT = "Open a gallery, then press 'Measure the open gallery' to see how the model lays it out."
ROW_ROLE = Qt.ItemDataRole.UserRole


def item_name(row: Any) -> str:
    """A gallery row as the list shows it: a text's start, or a file's name."""
    if row.text is not None:
        return row.text if len(row.text) <= 60 else row.text[:59] + "…"
    return Path(row.source).name


def figures(report: dict[str, Any]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(group, [(name, value, definition key)]) for the numbers list, in reading order: each pair, then each
    modality."""
    out: list[tuple[str, list[tuple[str, str, str]]]] = []

    def group(title: str) -> list[tuple[str, str, str]]:
        rows: list[tuple[str, str, str]] = []
        out.append((title, rows))
        return rows

    def add(rows: list[tuple[str, str, str]], name: str, value: Any, key: str) -> None:
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            rows.append((name, f"{value:.3f}" if isinstance(value, float) else str(value), key))

    for pair, d in report.get("pairs", {}).items():
        a, b = pair.split("|")
        rows = group(f"{a} ↔ {b}")
        add(rows, "modality gap", d.get("centroid_distance"), "centroid_distance")
        add(rows, "probe accuracy", d.get("linear_probe_accuracy"), "linear_probe_accuracy")
        add(rows, f"alignment ({d.get('paired', 0)} pairs)", d.get("alignment"), "alignment")
        if "neighbour_agreement" in d:
            add(rows, "neighbour agreement, intra", d["neighbour_agreement"]["intra"], "neighbour_agreement")
            add(rows, "neighbour agreement, inter", d["neighbour_agreement"]["inter"], "neighbour_agreement")
        for key, h in d.items():
            if key.startswith("hubness "):
                direction = key.removeprefix("hubness ").replace("->", " → ")
                add(rows, f"hubness {direction} (skew of N_{h['k']})", h["skewness"], "hubness")
                add(rows, f"never retrieved, {direction}", h["never_retrieved"], "hubness")
    bias = report.get("modality_bias", {})
    for m, d in report.get("per_modality", {}).items():
        rows = group(m)
        add(rows, "effective rank (centred)", d.get("effective_rank"), "effective_rank")
        add(rows, "effective rank (as given)", d.get("effective_rank_as_given"), "effective_rank_as_given")
        add(rows, "uniformity", d.get("uniformity"), "uniformity")
        add(rows, "length of the centroid", d.get("mean_norm_of_centroid"), "mean_norm_of_centroid")
        if "hubness_within" in d:
            h = d["hubness_within"]
            add(rows, f"hubness within (skew of N_{h['k']})", h["skewness"], "hubness")
            add(rows, "never retrieved, within", h["never_retrieved"], "hubness")
        if m in bias:
            add(rows, "nearest neighbour of its own modality", bias[m]["own_modality_top1"], "modality_bias")
            add(rows, "its share of the pool", bias[m]["own_share_of_pool"], "modality_bias")
    return out


def hub_lists(report: dict[str, Any], pair: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, hubness) for the directions of one pair 'a|b': within a, within b, a → b, b → a."""
    a, b = pair.split("|")
    per = report.get("per_modality", {})
    out = [(f"within {m}", per[m]["hubness_within"]) for m in (a, b) if "hubness_within" in per.get(m, {})]
    d = report.get("pairs", {}).get(pair, {})
    out += [(f"{src} queries → {dst} items", d[f"hubness {src}->{dst}"]) for src, dst in ((a, b), (b, a))
            if f"hubness {src}->{dst}" in d]
    return out


def pairs_of(report: dict[str, Any]) -> list[str]:
    """The pairs to choose from: 'a|b' of the pair measures, or one modality alone ('a|a')."""
    pairs = list(report.get("pairs", {}))
    return pairs or [f"{m}|{m}" for m in report.get("per_modality", {})][:1]


def headline(report: dict[str, Any], dim: int) -> str:
    """One or two sentences a person who does not program can read."""
    parts = []
    for pair, d in report.get("pairs", {}).items():
        a, b = pair.split("|")
        probe = d.get("linear_probe_accuracy")
        told = f", a linear probe tells them apart {probe:.0%} of the time" if probe == probe else ""
        parts.append(f"{a} and {b}: centroids {d['centroid_distance']:.2f} apart{told}.")
    ranks = [f"{m} {d['effective_rank']:.1f}" for m, d in report.get("per_modality", {}).items()
             if d.get("effective_rank") is not None]
    if ranks:
        parts.append(f"Directions really used (effective rank, of {dim}): {', '.join(ranks)}.")
    return " ".join(parts)


def new_plot(title: str, x: str, y: str, legend_at: tuple[int, int] = (-10, 10)) -> pg.PlotWidget:
    widget = pg.PlotWidget(title=title)
    item = widget.getPlotItem()
    item.setLabel("bottom", x)
    item.setLabel("left", y)
    item.getAxis("left").enableAutoSIPrefix(False)
    item.addLegend(offset=legend_at, labelTextSize="9pt")
    item.setMenuEnabled(False)
    item.showGrid(x=True, y=True, alpha=0.2)
    return widget


class DiagnosticsPanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        self.measure_button = QPushButton("Measure the open gallery")
        self.measure_button.setToolTip("Modality gap, spectrum and effective rank, cosine distributions and hubs "
                                       "of the open gallery (at most 5,000 items of each modality, picked at random)")
        self.measure_button.clicked.connect(self.measure)
        self.k = QSpinBox()
        self.k.setRange(1, 100)
        self.k.setValue(10)
        self.k.setPrefix("k = ")
        self.k.setToolTip("Hubs count how often an item is among a query's k nearest")
        self.pair = QComboBox()
        self.pair.setToolTip("The two modalities the cosines and hubs are drawn for")
        self.pair.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.pair.currentIndexChanged.connect(lambda _i: self._draw_pair())
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the figures as JSON (with what each one means) or the shown plot as "
                                      "PNG/SVG")
        self.export_button.clicked.connect(self._export_dialog)
        self.summary = QLabel(HINT)
        self.summary.setWordWrap(True)
        self.spectrum_view = new_plot("Singular values around each centroid (log scale)", "direction",
                                      "share of the largest")
        self.spectrum_plot = self.spectrum_view.getPlotItem()
        self.spectrum_plot.setLogMode(y=True)
        self.cosine_view = new_plot("Cosine similarity", "cosine", "share of pairs")
        self.cosine_plot = self.cosine_view.getPlotItem()
        self.hub_view = new_plot("How often each item is retrieved", "N_k: times among someone's k nearest",
                                 "share of items")
        self.hub_plot = self.hub_view.getPlotItem()
        self.hubs = QTreeWidget()
        self.hubs.setHeaderLabels(["Most retrieved items (click one to select it)", "N_k"])
        self.hubs.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.hubs.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.hubs.header().setStretchLastSection(False)
        self.hubs.itemClicked.connect(self._hub_clicked)
        hub_page = QSplitter(Qt.Orientation.Vertical)
        hub_page.addWidget(self.hub_view)
        hub_page.addWidget(self.hubs)
        hub_page.setSizes([300, 160])
        self.tabs = QTabWidget()
        self.tabs.addTab(self.spectrum_view, "Spectrum")
        self.tabs.addTab(self.cosine_view, "Cosines")
        self.tabs.addTab(hub_page, "Hubs")
        self.numbers = QTreeWidget()
        self.numbers.setHeaderLabels(["Figure (hover: what it is)", "Value", "second"])
        self.numbers.setMinimumWidth(330)
        self.numbers.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.numbers.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.numbers.header().setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.numbers.header().setStretchLastSection(False)

        top = QHBoxLayout()
        top.addWidget(self.measure_button)
        top.addWidget(self.k)
        top.addWidget(QLabel("Pair:"))
        top.addWidget(self.pair)
        top.addStretch(1)
        top.addWidget(self.export_button)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tabs)
        split.addWidget(self.numbers)
        split.setSizes([560, 400])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)
        session.gallery_changed.connect(self._enable)
        session.diagnosis_changed.connect(self.refresh)
        jobs.busy_changed.connect(lambda _busy: self._enable())
        self.refresh()

    def _enable(self) -> None:
        self.measure_button.setEnabled(self.session.gallery is not None)
        self.export_button.setEnabled(self.session.diagnosis is not None)
        self.pair.setEnabled(self.pair.count() > 1)

    def measure(self) -> None:
        self.jobs.diagnose(self.k.value())

    # ---- drawing ---------------------------------------------------------------------------------------

    def refresh(self) -> None:
        self.numbers.clear()
        diagnosis = self.session.diagnosis
        report = diagnosis.report if diagnosis is not None else {}
        self.pair.blockSignals(True)
        self.pair.clear()
        for pair in pairs_of(report):
            a, b = pair.split("|")
            self.pair.addItem(a if a == b else f"{a} ↔ {b}", pair)
        self.pair.blockSignals(False)
        self._enable()
        self._draw_spectra(report)
        self._draw_pair()
        if diagnosis is None:
            self.summary.setText(HINT)
            return
        dim = int(np.asarray(diagnosis.embedding.vectors).shape[1]) if len(diagnosis.embedding.rows) else 0
        counts = ", ".join(f"{n:,} {m}" for m, n in report.get("counts", {}).items())
        second, second_name = self._second_report()
        beside = f" Second model, {second_name}: {headline(second, dim)}" if second else ""
        self.summary.setText(f"{counts}. {headline(report, dim)}{beside}")
        self._fill_numbers(report)

    @staticmethod
    def _clear(plot: pg.PlotItem) -> None:
        plot.clear()
        if plot.legend is not None:
            plot.legend.clear()

    def _pen(self, i: int, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> Any:
        return pg.mkPen(PALETTE[i % len(PALETTE)], width=2, style=style)

    def _second_report(self) -> tuple[dict[str, Any], str]:
        d = self.session.diagnosis
        return (d.second.report, d.second_name) if d is not None and d.second is not None else ({}, "")

    def _draw_spectra(self, report: dict[str, Any]) -> None:
        self._clear(self.spectrum_plot)
        colour = {m: i for i, m in enumerate(report.get("per_modality", {}))}
        second, second_name = self._second_report()
        for rep, style, prefix in ((report, Qt.PenStyle.SolidLine, ""),
                                   (second, Qt.PenStyle.DashLine, f"{second_name} (dashed): ")):
            for m, d in rep.get("per_modality", {}).items():
                s = np.asarray(d.get("spectrum", []), np.float64)
                s = s[s > 0]
                if len(s):
                    rank = d.get("effective_rank")
                    name = prefix + (f"{m}: effective rank {rank:.1f}" if rank is not None else m)
                    self.spectrum_plot.plot(np.arange(1, len(s) + 1), s, pen=self._pen(colour.get(m, 0), style),
                                            name=name)
        curves = self.spectrum_plot.listDataItems()
        if curves:  # room above the largest (1) for the legend, a line per curve
            low = min(float(np.log10(np.min(c.yData))) if c.yData is not None and len(c.yData) else 0.0
                      for c in curves)
            share = min(0.6, 0.08 * len(curves) + 0.05)
            self.spectrum_plot.enableAutoRange(y=False)
            self.spectrum_plot.setYRange(low, -low * share / (1 - share), padding=0.02)
            decades = range(int(np.floor(low)), 1)  # no tick above 1: nothing is larger than the largest
            self.spectrum_plot.getAxis("left").setTicks([[(d, f"{10.0 ** d:g}") for d in decades]])

    def _draw_pair(self) -> None:
        self._clear(self.cosine_plot)
        self._clear(self.hub_plot)
        self.hubs.clear()
        diagnosis, pair = self.session.diagnosis, self.pair.currentData()
        if diagnosis is None or pair is None:
            return
        report = diagnosis.report
        a, b = pair.split("|")
        colour = {m: i for i, m in enumerate(report.get("per_modality", {}))}
        cos = report.get("cosines", {})
        if "bins" in cos:
            edges = np.asarray(cos["bins"])
            lines = [(f"within {a}", a, colour.get(a, 0), Qt.PenStyle.SolidLine),
                     (f"within {b}", b, colour.get(b, 1), Qt.PenStyle.SolidLine),
                     (f"{a} ↔ {b}: any two", pair, len(colour), Qt.PenStyle.DashLine),
                     (f"{a} ↔ {b}: a sample's own", f"{pair} paired", len(colour) + 1, Qt.PenStyle.SolidLine)]
            for name, key, c, style in lines[: 1 if a == b else 4]:
                counts = np.asarray(cos.get(key, []), np.float64)
                if counts.sum() > 0:
                    self.cosine_plot.plot(edges, counts / counts.sum(), stepMode="center", pen=self._pen(c, style),
                                          name=name)
            second, second_name = self._second_report()
            for name, key, c in ((f"{second_name}: {a} ↔ {b}: any two", pair, len(colour)),
                                 (f"{second_name}: a sample's own", f"{pair} paired", len(colour) + 1)):
                counts = np.asarray(second.get("cosines", {}).get(key, []), np.float64)
                if a != b and counts.sum() > 0:
                    self.cosine_plot.plot(edges, counts / counts.sum(), stepMode="center",
                                          pen=self._pen(c, Qt.PenStyle.DotLine), name=name)
        rows = diagnosis.embedding.rows
        for i, (where, h) in enumerate(hub_lists(report, pair)):
            counts = np.asarray(h["histogram"], np.float64)
            if counts.sum() > 0:
                self.hub_plot.plot(np.arange(len(counts)), counts / counts.sum(), pen=self._pen(i), name=where)
            group = QTreeWidgetItem([f"{where}: N_{h['k']} is {h['k']} on average, {h['max_occurrence']} at most",
                                     ""])
            self.hubs.addTopLevelItem(group)
            for emb_row, n in h["hubs"]:
                child = QTreeWidgetItem([item_name(rows[emb_row]), str(n)])
                child.setData(0, ROW_ROLE, int(emb_row))
                child.setToolTip(0, rows[emb_row].text or rows[emb_row].source)
                group.addChild(child)
            group.setExpanded(True)
        if self.hub_plot.listDataItems():
            k = hub_lists(report, pair)[0][1]["k"]
            self.hub_plot.addItem(pg.InfiniteLine(k, pen=pg.mkPen("#888", style=Qt.PenStyle.DotLine)))
        self._leave_room_for_the_legend(self.cosine_plot, 1.7)
        self._leave_room_for_the_legend(self.hub_plot, 2.2)

    @staticmethod
    def _leave_room_for_the_legend(plot: pg.PlotItem, headroom: float) -> None:
        """Shares start at 0; the top of the plot (above the highest peak) is left to the legend."""
        tops = [float(np.nanmax(item.yData)) for item in plot.listDataItems() if item.yData is not None
                and len(item.yData)]
        if tops:
            plot.enableAutoRange(y=False)
            plot.setYRange(0, max(tops) * headroom, padding=0)

    def _fill_numbers(self, report: dict[str, Any]) -> None:
        definitions = report.get("definitions", {})
        second, second_name = self._second_report()
        self.numbers.setColumnHidden(2, not second)
        if second:
            self.numbers.headerItem().setToolTip(2, f"the same gallery as {second_name} embeds it")
        theirs = {(title, name): value for title, rows in figures(second) for name, value, _ in rows}
        for title, rows in figures(report):
            group = QTreeWidgetItem([title, "", ""])
            self.numbers.addTopLevelItem(group)
            for name, value, key in rows:
                child = QTreeWidgetItem([name, value, theirs.get((title, name), "")])
                for col in range(3):
                    child.setToolTip(col, definitions.get(key, ""))
                for col in (1, 2):
                    child.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                group.addChild(child)
            group.setExpanded(True)

    def _hub_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        emb_row = item.data(0, ROW_ROLE)
        diagnosis = self.session.diagnosis
        if emb_row is None or diagnosis is None or diagnosis.index_rows is None:
            return
        self.session.select_gallery([int(diagnosis.index_rows[int(emb_row)])])

    # ---- export ----------------------------------------------------------------------------------------

    def export_to(self, path: str | Path) -> Path:
        """The figures as JSON (with their definitions), or the plots as PNG/SVG, by the file's suffix."""
        diagnosis = self.session.diagnosis
        if diagnosis is None:
            raise ValueError("nothing measured yet")
        path = Path(path)
        if path.suffix.lower() == ".json":
            return export_json(path, diagnosis.report)
        shown = (self.spectrum_view, self.cosine_view, self.hub_view)[min(self.tabs.currentIndex(), 2)]
        return export_figure(shown, path, "Contrastive Lens diagnostics")

    def _export_dialog(self) -> None:
        if self.session.diagnosis is not None:
            save_as(self, "Export the diagnostics", "diagnostics.json", "JSON (*.json);;PNG image (*.png);;SVG (*.svg)",
                    self.export_to, self.jobs.error.emit)
