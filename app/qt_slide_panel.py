"""Slide: a whole slide (pyramidal OME-TIFF, H&E or multiplex) tiled at the model's patch size, each tile's
similarity to a query (a text, patch files — H&E or mIF — or both, fused) drawn over the slide's overview as a heatmap you can pan and zoom (mouse wheel, drag);
clicking a tile makes it the query. Tiling and embedding run in a worker through the cache (reopening a slide
costs a lookup); re-scoring against a clicked tile needs no model call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from cl_core.actions import colour_map
from cl_core.session import Session

from .jobs import Jobs

HINT = ("Open a whole slide (an OME-TIFF or TIFF, H&E or multiplex; `clens tissue make-slide` writes a synthetic "
        "one), type what to look for (and/or add a query patch), and press Show. Click a tile to search the slide for "
        "tiles like it.")
SLIDE_FILTER = "Slides (*.ome.tif *.ome.tiff *.tif *.tiff);;All files (*)"


def heat_rgba(scores: np.ndarray, alpha: int) -> np.ndarray:
    """[rows, cols, 4] uint8: the command line's colour ramp from the lowest to the highest finite score (dark
    low, bright high); NaN tiles clear."""
    finite = np.isfinite(scores)
    lo, hi = (float(scores[finite].min()), float(scores[finite].max())) if finite.any() else (0.0, 1.0)
    rgb = colour_map((np.where(finite, scores, lo) - lo) / max(hi - lo, 1e-12))
    return np.dstack([rgb, np.where(finite, alpha, 0).astype(np.uint8)])


class SlidePanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        self.path: str | None = None
        self.open_button = QPushButton("Open slide…")
        self.open_button.setToolTip("Choose a whole slide: a pyramidal OME-TIFF or TIFF, H&E or a multiplex stack")
        self.open_button.clicked.connect(self.choose)
        self.query = QLineEdit()
        self.query.setPlaceholderText("what to look for, e.g. tumour necrosis present")
        self.query.setToolTip("What to look for on the slide, in words; each tile is scored against it")
        self.query.returnPressed.connect(self.show_heat)
        self.patch_button = QPushButton("+ patch…")
        self.patch_button.setToolTip("Add a query patch (an H&E picture or an mIF stack), fused with the text when "
                                     "both are given; right-click to clear")
        self.patch_button.clicked.connect(self.choose_patch)
        self.patch_button.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.patch_button.customContextMenuRequested.connect(lambda _p: self.set_patches([]))
        self.patches: list[str] = []
        self.show_button = QPushButton("Show")
        self.show_button.setToolTip("Tile the slide (cached), score every tile against the text, draw the heatmap")
        self.show_button.clicked.connect(self.show_heat)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setMaximumWidth(140)
        self.opacity.setToolTip("Opacity of the heatmap over the slide")
        self.opacity.valueChanged.connect(lambda _v: self._draw_heat())
        self.summary = QLabel(HINT)
        self.summary.setWordWrap(True)
        self.view = pg.GraphicsLayoutWidget()
        self.box = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.picture = pg.ImageItem(axisOrder="row-major")
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.picture)
        self.box.addItem(self.heat)
        self.picture.mouseClickEvent = self._clicked  # type: ignore[method-assign]
        self.heat.mouseClickEvent = self._clicked  # type: ignore[method-assign]
        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.query, 1)
        top.addWidget(self.patch_button)
        top.addWidget(self.show_button)
        top.addWidget(QLabel("opacity"))
        top.addWidget(self.opacity)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        session.slide_changed.connect(self.refresh)
        session.model_changed.connect(lambda _m: self._enable())
        self._enable()
        self.refresh()

    def _enable(self) -> None:
        self.show_button.setEnabled(self.session.model is not None and self.path is not None)

    def choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a whole slide", "", SLIDE_FILTER)
        if path:
            self.open_slide(path)

    def open_slide(self, path: str | Path) -> None:
        self.path = str(path)
        self.summary.setText(f"{Path(path).name}: type what to look for and press Show")
        self._enable()

    def choose_patch(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A query patch", "", "Pictures and stacks (*.png *.jpg *.jpeg "
                                              "*.tif *.tiff *.npy);;All files (*)")
        if path:
            self.set_patches([*self.patches, path])

    def set_patches(self, paths: list[str]) -> None:
        """The query's patch files (fused with the text, equal weights)."""
        self.patches = list(paths)
        self.patch_button.setText(f"+ patch… ({len(self.patches)})" if self.patches else "+ patch…")

    def show_heat(self) -> None:
        text = self.query.text().strip()
        if self.path is not None and (text or self.patches):
            self.jobs.slide_heatmap(self.path, [text] if text else [], self.patches)

    def refresh(self) -> None:
        heat = self.session.slide
        if heat is None:
            self.picture.clear()
            self.heat.clear()
            if self.path is None:
                self.summary.setText(HINT)
            return
        self.path = heat.embedding.path
        self._enable()
        if heat.overview is not None:
            self.picture.setImage(heat.overview)
        self._draw_heat()
        self.box.autoRange()
        e, shown = heat.embedding, heat.shown
        finite = shown[np.isfinite(shown)]
        span = f"scores {finite.min():.3f} to {finite.max():.3f}" if len(finite) else "no tile scored"
        self.summary.setText(f"{Path(e.path).name} — {', '.join(heat.query)}: {e.rows} x {e.cols} tiles of {e.patch} "
                             f"px, {span} (dark low, bright high); glass left clear. Click a tile to search for "
                             "tiles like it." + "".join(f" Channels: {n}." for n in e.channel_notes))

    def _draw_heat(self) -> None:
        heat = self.session.slide
        if heat is None:
            return
        e = heat.embedding
        self.heat.setImage(heat_rgba(heat.shown, round(255 * self.opacity.value() / 100)))
        side = e.patch / heat.overview_scale  # a tile's side in overview pixels
        self.heat.setRect(0, 0, e.cols * side, e.rows * side)

    def tile_at(self, x: float, y: float) -> tuple[int, int] | None:
        """(row, col) of the tile under overview pixel (x, y), or None off the tiles."""
        heat = self.session.slide
        if heat is None:
            return None
        side = heat.embedding.patch / heat.overview_scale
        row, col = int(y // side), int(x // side)
        if 0 <= row < heat.embedding.rows and 0 <= col < heat.embedding.cols and x >= 0 and y >= 0:
            return row, col
        return None

    def _clicked(self, event) -> None:  # type: ignore[no-untyped-def]
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point = self.picture.mapFromScene(event.scenePos())
        self.click_tile(point.x(), point.y())
        event.accept()

    def click_tile(self, x: float, y: float) -> None:
        """Make the tile under overview pixel (x, y) the query."""
        heat, tile = self.session.slide, self.tile_at(x, y)
        if heat is None or tile is None:
            return
        try:
            self.session.set_slide(heat.requery(*tile))
        except ValueError as exc:
            self.jobs.status.emit(str(exc))
