"""Projection: every gallery item in a 2-D map (PCA, UMAP, t-SNE), coloured by modality or label; the current
query drawn in by the map's own transform, its hits outlined; click or shift-drag a box to select (linked to
the results through the Session), unselected points stay visible, dimmed; lines between the items of one
sample and the modality centroids show the modality gap; export to PNG or SVG."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cl_core import actions
from cl_core.actions import MISSING_CATEGORY, PROJECTIONS
from cl_core.session import Session
from cl_core.state import ProjectionState

from .jobs import Jobs
from .qt_audio import AudioPlayer
from .qt_select_viewbox import SelectViewBox, inside_polygon
from .qt_theme import PALETTE
from .qt_util import export_figure

DIM_ALPHA = 50
MISSING_COLOUR = "#b0b0b0"
SHADES = 64  # a continuous column is drawn in this many steps of the colour map
LEGEND_MAX = 12
PREVIEW_SIZE = 128
PREVIEW_SECONDS = 3.0  # a sound's point plays this much when clicked
PREVIEW_HINT = "Hover a point to see its item here."
MAX_DRAWN = 20_000  # more visible points than this are drawn as a density image (level of detail)
GRID = 2048  # the density image's bins per axis over the whole map
HINT = ("Shift-drag to select (a box, or a free shape in lasso mode), click a point to select it, Ctrl adds; "
        "scroll to zoom, drag to pan.")


class ProjectionPanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None,
                 state: ProjectionState | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        self.state = state or ProjectionState()
        self.method = QComboBox()
        self.method.addItems([m.upper() if m == "pca" else {"umap": "UMAP", "tsne": "t-SNE"}[m] for m in PROJECTIONS])
        self.method.setToolTip("PCA: exact, linear, seconds at 1M points. UMAP and t-SNE: neighbourhoods kept, "
                               "minutes at large sizes; every point is mapped, none sampled; maps are cached")
        self.method.currentIndexChanged.connect(lambda i: setattr(self.state, "method", PROJECTIONS[i]))
        self.run_button = QPushButton("Map the gallery")
        self.run_button.setToolTip("Project every gallery item to 2-D with the chosen method (in the background)")
        self.run_button.clicked.connect(self.run)
        self.colour = QComboBox()
        self.colour.addItems(["modality", "label"])
        self.colour.setToolTip("Colour points by their modality, their label, or any column of the gallery's "
                               "manifest (numbers with many values get a colour bar, others a legend)")
        self.colour.currentTextChanged.connect(self._colour_chosen)
        self.pairs = QCheckBox("pairs and gap")
        self.pairs.setToolTip("Lines between the items of one sample in different modalities, and each "
                              "modality's centroid: the modality gap, drawn")
        self.pairs.toggled.connect(lambda on: setattr(self.state, "show_pairs", on))
        self.select_mode = QComboBox()
        self.select_mode.addItems(["box", "lasso"])
        self.select_mode.setToolTip("What shift-drag draws to select points: a box, or a free shape (lasso)")
        self.select_mode.currentTextChanged.connect(self._select_mode)
        self.zoom = QPushButton("Zoom to selection")
        self.zoom.setToolTip("Fit the view to the selected points (all points when none is selected)")
        self.zoom.clicked.connect(self.zoom_to_selection)
        self.export = QPushButton("Export…")
        self.export.setToolTip("Save the map as PNG or SVG")
        self.export.clicked.connect(self.export_dialog)
        self.info = QLabel("Open a gallery, then map it.")
        self.info.setWordWrap(True)
        self.preview = QLabel(PREVIEW_HINT)
        self.preview.setObjectName("mapPreview")
        self.preview.setWordWrap(True)
        self.preview.setFixedWidth(PREVIEW_SIZE + 24)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        self.preview.setToolTip("The item under the mouse in the map; click a sound's point to hear it")
        self.player = AudioPlayer(self)
        self.player.unavailable.connect(jobs.status.emit)
        self.thumbs: dict[str, Path] = {}
        self._hovered = -1

        self.view = SelectViewBox()
        self.plot = pg.PlotWidget(viewBox=self.view)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.legend = self.plot.addLegend(offset=(10, 10))
        self.cmap = pg.colormap.get("viridis")
        self.colour_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=self.cmap, interactive=False, width=14)
        self.plot.getPlotItem().layout.addItem(self.colour_bar, 2, 5)
        self.colour_bar.hide()
        self.lines = pg.PlotCurveItem(pen=pg.mkPen(120, 120, 120, 60, width=1), connect="pairs")
        self.points = pg.ScatterPlotItem(size=6, pen=None, hoverable=True, tip=self._tip)
        self.selected = pg.ScatterPlotItem(size=9, pen=pg.mkPen("#111111", width=1.5), brush=None)
        self.hits = pg.ScatterPlotItem(size=14, pen=pg.mkPen("#ff4d6d", width=2.5), brush=None)
        self.centroids = pg.ScatterPlotItem(size=16, symbol="x", pen=pg.mkPen("#111111", width=2), brush="#111111")
        self.gap = pg.PlotCurveItem(pen=pg.mkPen("#111111", width=2, style=Qt.PenStyle.DashLine), connect="pairs")
        self.query = pg.ScatterPlotItem(size=22, symbol="star", pen=pg.mkPen("#111111", width=1.2), brush="#ff4d6d")
        self.density = pg.ImageItem(axisOrder="row-major")
        self.density.setColorMap(pg.colormap.get("CET-L17"))
        self.density.hide()
        for item in (self.density, self.lines, self.points, self.selected, self.hits, self.gap, self.centroids,
                     self.query):
            self.plot.addItem(item)
        self.view.sigRangeChanged.connect(lambda *_: self._draw_points())
        self.points.sigClicked.connect(self._clicked)
        self.points.sigHovered.connect(self._hovered_points)
        jobs.thumbnails_ready.connect(self._thumbnails_ready)
        self.view.box_selected.connect(self._box)
        self.view.lasso_selected.connect(self._lassoed)

        top = QHBoxLayout()
        for w in (self.method, self.run_button, QLabel("colour"), self.colour, self.pairs, QLabel("select"),
                  self.select_mode, self.zoom, self.export):
            top.addWidget(w)
        top.addStretch(1)
        middle = QHBoxLayout()
        middle.addWidget(self.plot, 1)
        middle.addWidget(self.preview)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(middle, 1)
        layout.addWidget(self.info)

        self.coords = np.zeros((0, 2), np.float32)
        self._grid: np.ndarray | None = None
        self._grid_box = (0.0, 0.0, 1.0, 1.0)
        self.categories: list[str] = []
        self.point_colours: list[QColor] = []
        self.codes = np.zeros(0, np.int64)
        self.state.events.colour_by.connect(lambda *_: self.recolour())
        self.state.events.show_pairs.connect(lambda *_: self._draw_pairs() if len(self.coords) else None)
        session.gallery_changed.connect(self._gallery_changed)
        session.projection_changed.connect(self.redraw)
        session.gallery_selection_changed.connect(lambda _s: self._show_selection())
        session.results_changed.connect(self._show_hits)
        session.query_point_changed.connect(self._show_query)
        self._gallery_changed()

    # ---- making the map --------------------------------------------------------------------------

    def run(self) -> None:
        self.jobs.project(self.state.method)

    def _colour_chosen(self, text: str) -> None:
        if text:
            self.state.colour_by = text

    def _gallery_changed(self) -> None:
        index = self.session.index
        self.run_button.setEnabled(index is not None)
        names = actions.colour_columns(index.meta) if index is not None else ["modality", "label"]
        self.colour.blockSignals(True)
        self.colour.clear()
        self.colour.addItems(names)
        self.colour.setCurrentText(self.state.colour_by if self.state.colour_by in names else "modality")
        self.colour.blockSignals(False)  # a column this gallery lacks stays asked for: the next one may have it
        self._hovered = -1
        self.preview.setText(PREVIEW_HINT)
        if index is None:
            self.info.setText("Open a gallery, then map it.")

    # ---- drawing ---------------------------------------------------------------------------------

    def _colour_rows(self) -> None:
        """Codes per row and a colour per code: categories from the palette, or a continuous column binned
        into SHADES steps of the colour map (missing values grey), with the legend or the colour bar."""
        index = self.session.index
        assert index is not None
        try:
            how = actions.colouring(index.rows, index.meta, self.state.colour_by)
        except KeyError:
            how = actions.colouring(index.rows, index.meta, "modality")
        self.legend.clear()
        if how.kind == "continuous":
            span = (how.high - how.low) or 1.0
            steps = np.clip(((how.values - how.low) / span * (SHADES - 1)).round(), 0, SHADES - 1)
            self.codes = np.where(np.isfinite(how.values), steps, SHADES).astype(np.int64)
            self.point_colours = [self.cmap.map(i / (SHADES - 1), mode="qcolor") for i in range(SHADES)]
            self.point_colours.append(QColor(MISSING_COLOUR))
            self.categories = []
            self.colour_bar.setLevels(values=(how.low, how.high))
            self.colour_bar.show()
            return
        self.colour_bar.hide()
        self.categories, self.codes = how.categories, how.codes
        self.point_colours = [QColor(MISSING_COLOUR) if c == MISSING_CATEGORY else QColor(PALETTE[i % len(PALETTE)])
                        for i, c in enumerate(self.categories)]
        for colour, name in list(zip(self.point_colours, self.categories, strict=True))[:LEGEND_MAX]:
            self.legend.addItem(pg.ScatterPlotItem(size=8, brush=pg.mkBrush(colour), pen=None), name)
        if len(self.categories) > LEGEND_MAX:
            self.legend.addItem(pg.ScatterPlotItem(size=0, pen=None), f"… {len(self.categories) - LEGEND_MAX} more")

    def _brushes(self, dim: bool) -> list[Any]:
        out = []
        for colour in self.point_colours:
            c = QColor(colour)
            if dim:
                c.setAlpha(DIM_ALPHA)
            out.append(pg.mkBrush(c))
        return out

    def redraw(self) -> None:
        projected = self.session.projection
        if projected is None or self.session.index is None:
            self.legend.clear()
            self.colour_bar.hide()
            self.coords = np.zeros((0, 2), np.float32)
            self.density.hide()
            for item in (self.points, self.selected, self.hits, self.centroids, self.query):
                item.setData([])
            for curve in (self.lines, self.gap):
                curve.setData([], [])
            return
        self.coords = np.asarray(projected.coords, np.float32)
        self._grid = None  # binned again on first need
        self.method.setCurrentIndex(PROJECTIONS.index(projected.projection.method))  # the map shown, however made
        self._colour_rows()
        self._draw_points()
        self._draw_pairs()
        self._show_selection()
        self._show_hits()
        self._show_query()
        p = projected.projection
        how = "from the cache" if projected.from_cache else f"fitted in {p.seconds:.1f} s"
        self.info.setText(f"{p.method.upper()} of all {len(self.coords):,} gallery items ({how}). {HINT}")
        self.view.autoRange()

    def recolour(self) -> None:
        """Colours changed, the view kept where the user put it."""
        if len(self.coords) and self.session.index is not None:
            self._colour_rows()
            self._draw_points()
            self._show_selection()

    def visible_rows(self) -> np.ndarray:
        (x0, x1), (y0, y1) = self.view.viewRange()
        x, y = self.coords[:, 0], self.coords[:, 1]
        return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))

    def _draw_points(self) -> None:
        """Points where few enough are in view, else a density image of the view (1M points stay fluid)."""
        if not len(self.coords):
            return
        rows = np.arange(len(self.coords)) if len(self.coords) <= MAX_DRAWN else self.visible_rows()
        if len(rows) > MAX_DRAWN:
            self.points.setData([])
            self._draw_density()
            return
        self.density.hide()
        brushes = self._brushes(bool(self.session.gallery_selection))
        self.points.setData(pos=self.coords[rows], brush=[brushes[c] for c in self.codes[rows]], data=rows)

    def _density_grid(self) -> None:
        """The whole map binned once at a fine resolution: a frame only slices it (no pass over every point)."""
        lo, hi = self.coords.min(axis=0), self.coords.max(axis=0)
        span = np.maximum(hi - lo, 1e-9)
        cells = ((self.coords - lo) / span * (GRID - 1)).astype(np.int32)
        counts = np.bincount(cells[:, 1] * GRID + cells[:, 0], minlength=GRID * GRID).reshape(GRID, GRID)
        self._grid = np.log1p(counts.astype(np.float32))
        self._grid_box = (float(lo[0]), float(lo[1]), float(span[0]) / (GRID - 1), float(span[1]) / (GRID - 1))

    def _draw_density(self) -> None:
        if self._grid is None:
            self._density_grid()
        assert self._grid is not None
        gx, gy, cw, ch = self._grid_box
        (x0, x1), (y0, y1) = self.view.viewRange()
        i0, i1 = (int(np.clip(np.floor((v - gx) / cw), 0, GRID)) for v in (x0, x1 + cw))
        j0, j1 = (int(np.clip(np.floor((v - gy) / ch), 0, GRID)) for v in (y0, y1 + ch))
        if i1 <= i0 or j1 <= j0:
            self.density.hide()
            return
        self.density.setImage(self._grid[j0:j1, i0:i1], levels=(0.0, float(self._grid.max()) or 1.0))
        self.density.setRect(QRectF(gx + i0 * cw, gy + j0 * ch, (i1 - i0) * cw, (j1 - j0) * ch))
        self.density.show()

    def _draw_pairs(self) -> None:
        index = self.session.index
        if not self.state.show_pairs or index is None:
            self.lines.setData([], [])
            self.centroids.setData([])
            self.gap.setData([], [])
            return
        by_sample: dict[str, list[int]] = {}
        for i, r in enumerate(index.rows):
            by_sample.setdefault(r.sample_id, []).append(i)
        segments = [(a, b) for rows in by_sample.values() if len(rows) > 1 for a, b in zip(rows, rows[1:], strict=False)]
        pts = self.coords[np.array(segments).reshape(-1)] if segments else np.zeros((0, 2), np.float32)
        self.lines.setData(pts[:, 0], pts[:, 1])
        mods = sorted({r.modality.value for r in index.rows})
        cents = np.stack([self.coords[[i for i, r in enumerate(index.rows) if r.modality.value == m]].mean(axis=0)
                          for m in mods])
        self.centroids.setData(pos=cents, data=mods, tip=lambda x, y, data: f"centroid of {data}")
        pairs = np.array([(cents[a], cents[b]) for a in range(len(mods)) for b in range(a + 1, len(mods))])
        flat = pairs.reshape(-1, 2) if len(pairs) else np.zeros((0, 2))
        self.gap.setData(flat[:, 0], flat[:, 1])

    def _tip(self, x: float, y: float, data: Any) -> str:
        index = self.session.index
        if index is None or data is None or not 0 <= int(data) < len(index.rows):
            return ""
        r = index.rows[int(data)]
        what = r.text if r.text else Path(r.source).name
        return f"{r.modality.value} · {r.sample_id}\n{what}"

    def _show_selection(self) -> None:
        sel = sorted(i for i in self.session.gallery_selection if i < len(self.coords))
        if len(self.coords):
            self._draw_points()  # dimmed while something is selected
        self.selected.setData(pos=self.coords[sel] if sel else np.zeros((0, 2)),
                              brush=[self._brushes(False)[self.codes[i]] for i in sel])

    def _show_hits(self) -> None:
        rows = [h.row for h in self.session.results if h.row < len(self.coords)]
        self.hits.setData(pos=self.coords[rows] if rows else np.zeros((0, 2)))

    def _show_query(self) -> None:
        point = self.session.query_point
        self.query.setData(pos=[] if point is None else [QPointF(float(point[0]), float(point[1]))])

    # ---- selecting -------------------------------------------------------------------------------

    def _hovered_points(self, _item: Any, points: Any, _ev: Any = None) -> None:
        if len(points):
            self.show_item(int(points[0].data()))

    def show_item(self, row: int) -> None:
        """The preview beside the map: a text whole, a file's thumbnail (drawn in the background when it is not
        cached yet) with its name."""
        index = self.session.index
        if index is None or not 0 <= row < len(index.rows) or row == self._hovered:
            return
        self._hovered = row
        r = index.rows[row]
        head = f"<b>{r.modality.value}</b> · {html.escape(r.sample_id)}"
        if r.text:
            self.preview.setText(f"{head}<br>{html.escape(r.text)}")
            return
        thumb = self.thumbs.get(r.source)
        name = html.escape(Path(r.source).name)
        if thumb is None:
            self.preview.setText(f"{head}<br>{name}")
            stacks = [r.source] if r.modality.value == "multichannel" else []  # drawn as the results' stacks are
            self.jobs.fetch_thumbnails([r.source], PREVIEW_SIZE, kind="preview", stacks=stacks)
            return
        hint = "<br><i>click to hear it</i>" if r.modality.value == "audio" else ""
        self.preview.setText(f'{head}<br><img src="{html.escape(str(thumb))}" width="{PREVIEW_SIZE}"><br>'
                             f"{name}{hint}")

    def _thumbnails_ready(self, found: dict[str, object]) -> None:
        self.thumbs.update({k: Path(str(v)) for k, v in found.items() if isinstance(v, Path)})
        row, self._hovered = self._hovered, -1
        if row >= 0:
            self.show_item(row)  # the picture it was waiting for may have come

    def _clicked(self, _item: Any, points: Any, ev: Any = None) -> None:
        rows = {int(p.data()) for p in points}
        index = self.session.index
        if index is not None and len(rows) == 1:
            r = index.rows[next(iter(rows))]
            if r.modality.value == "audio":
                self.player.play(r.source, PREVIEW_SECONDS)
        add = ev is not None and bool(ev.modifiers() & Qt.KeyboardModifier.ControlModifier)
        self.session.select_gallery((self.session.gallery_selection | rows) if add else rows)

    def rows_in(self, rect: QRectF) -> list[int]:
        x, y = self.coords[:, 0], self.coords[:, 1]
        inside = (x >= rect.left()) & (x <= rect.right()) & (y >= rect.top()) & (y <= rect.bottom())
        return np.flatnonzero(inside).tolist()

    def _box(self, rect: QRectF, add: bool) -> None:
        rows = set(self.rows_in(rect))
        self.session.select_gallery((self.session.gallery_selection | rows) if add else rows)

    def _select_mode(self, text: str) -> None:
        self.view.lasso = text == "lasso"

    def _lassoed(self, polygon: np.ndarray, add: bool) -> None:
        rows = set(np.flatnonzero(inside_polygon(self.coords, polygon)).tolist())
        self.session.select_gallery((self.session.gallery_selection | rows) if add else rows)

    def zoom_to_selection(self) -> None:
        sel = sorted(self.session.gallery_selection)
        pts = self.coords[sel] if sel else self.coords
        if len(pts):
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            pad = np.maximum((hi - lo) * 0.1, 1e-3)
            self.view.setRange(xRange=(lo[0] - pad[0], hi[0] + pad[0]), yRange=(lo[1] - pad[1], hi[1] + pad[1]),
                               padding=0)

    # ---- export ----------------------------------------------------------------------------------

    def export_to(self, path: str | Path) -> Path:
        """PNG or SVG by the file's suffix: the map as it is drawn."""
        return export_figure(self.plot, path, "Contrastive Lens map")

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the map", "map.png", "PNG image (*.png);;SVG (*.svg)")
        if path:
            self.export_to(path)
