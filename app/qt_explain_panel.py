"""Why it matched: where in a picture (a map over it, with a colour bar and an opacity slider), when in a sound
(the score over time drawn over its spectrogram; a click plays from there) and which words of a text (each
word shaded by how much the score drops without it).

The panel listens to the Session's explanation and gallery selection; "Explain the selected item" (or a
result's "Why did this match?") asks the controller for a map, computed in a worker.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from cl_core import actions
from cl_core.errors import ClensError
from cl_core.session import Session

from .jobs import Jobs
from .qt_audio import AudioPlayer
from .qt_util import export_json

HINT = ("Search, pick one result (in the results or the map), then press 'Explain the selected item' or "
        "right-click a result: 'Why did this match?'")
IMAGE, AUDIO, TEXT, EMPTY = range(4)


def word_colour(value: float, top: float) -> str:
    """A word's shade: orange for words that carry the match (the score drops without them), blue for words
    that work against it; the stronger, the deeper."""
    a = min(1.0, abs(value) / top) if top > 0 else 0.0
    return f"rgba(249, 142, 9, {a:.2f})" if value >= 0 else f"rgba(60, 120, 220, {a:.2f})"


def words_html(explained: actions.Explained) -> str:
    """The text with each word shaded by its importance, its drop in score shown when hovered (title)."""
    w = explained.words
    assert w is not None
    text = explained.target
    top = float(np.abs(w.importance).max()) if len(w.importance) else 0.0
    out, pos = [], 0
    for (a, b), imp in zip(w.spans, w.importance, strict=True):
        out.append(html.escape(text[pos:a]))
        out.append(f'<span style="background-color: {word_colour(float(imp), top)}" '
                   f'title="{float(imp):+.4f}">{html.escape(text[a:b])}</span>')
        pos = b
    out.append(html.escape(text[pos:]))
    order = sorted(zip(w.words, w.importance, strict=True), key=lambda t: -t[1])[:5]
    ranked = ", ".join(f"<b>{html.escape(word)}</b> {imp:+.3f}" for word, imp in order)
    return (f'<p style="font-size: 14pt; line-height: 150%">{"".join(out)}</p>'
            f"<p>score {w.score:+.4f}; words that carry it most: {ranked}</p>"
            "<p><small>Each word is left out in turn; its shade is how much the score drops without it "
            "(orange: it helps the match, blue: it works against it).</small></p>")


class ExplainPanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        self.title = QLabel(HINT)
        self.title.setWordWrap(True)
        self.explain_button = QPushButton("Explain the selected item")
        self.explain_button.setToolTip("Map where (picture), when (sound) or which words (text) make the one "
                                       "selected gallery item match the shown results' query")
        self.explain_button.clicked.connect(self.explain_selected)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setToolTip("The map's opacity over the picture")
        self.opacity.valueChanged.connect(lambda _v: self._draw_image())
        self.opacity_label = QLabel("opacity")
        self.export = QPushButton("Export…")
        self.export.setToolTip("Save the map as PNG (over the picture, or the curve of a sound) or as JSON")
        self.export.clicked.connect(self._export_dialog)
        self.image_view = pg.GraphicsLayoutWidget()
        self.image_plot = self.image_view.addPlot()
        self.image_plot.setAspectLocked(True)
        self.image_plot.invertY(True)
        self.image_plot.hideAxis("left")
        self.image_plot.hideAxis("bottom")
        self.image_plot.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image_plot.addItem(self.image)
        self.audio_view = pg.PlotWidget()
        self.audio_view.setMenuEnabled(False)
        self.audio_view.setLabel("bottom", "time", units="s")
        self.audio_view.setLabel("left", "frequency (spectrogram) · score (curve)")
        self.spectrum = pg.ImageItem(axisOrder="row-major")
        self.spectrum.setColorMap(pg.colormap.get("inferno"))
        self.audio_view.addItem(self.spectrum)
        self.curve = pg.PlotDataItem(pen=pg.mkPen("#4fd1ff", width=2))
        self.audio_view.addItem(self.curve)
        self.peak_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ff4d6d", width=2))
        self.audio_view.addItem(self.peak_line)
        self.audio_view.scene().sigMouseClicked.connect(self._audio_clicked)
        self.audio_view.setToolTip("Click to play the sound from there")
        self.text_view = QTextBrowser()
        self.empty = QLabel("")
        self.views = QStackedWidget()
        for w in (self.image_view, self.audio_view, self.text_view, self.empty):
            self.views.addWidget(w)
        self.views.setCurrentIndex(EMPTY)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.player = AudioPlayer(self)
        self.player.unavailable.connect(jobs.status.emit)

        top = QHBoxLayout()
        top.addWidget(self.explain_button)
        top.addWidget(self.opacity_label)
        top.addWidget(self.opacity, 1)
        top.addWidget(self.export)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.title)
        layout.addWidget(self.views, 1)
        layout.addWidget(self.caption)
        session.explanation_changed.connect(self.refresh)
        session.gallery_selection_changed.connect(lambda _s: self._enable())
        session.results_changed.connect(self._enable)
        self.refresh()

    def _enable(self) -> None:
        ok = len(self.session.gallery_selection) == 1 and self.session.query_vector is not None
        self.explain_button.setEnabled(ok)

    def explain_selected(self) -> None:
        if len(self.session.gallery_selection) == 1:
            self.jobs.explain_row(next(iter(self.session.gallery_selection)))

    def refresh(self) -> None:
        self._enable()
        ex = self.session.explanation
        image = ex is not None and ex.image is not None
        self.opacity.setVisible(image)
        self.opacity_label.setVisible(image)
        self.export.setEnabled(ex is not None)
        if ex is None:
            self.title.setText(HINT)
            self.caption.setText("")
            self.views.setCurrentIndex(EMPTY)
            return
        query = ", ".join(ex.query) or "the query"
        target = Path(ex.target).name if ex.modality != "text" else "this text"
        self.title.setText(f"Why {target} matches {query}")
        if ex.image is not None:
            self._draw_image()
            m = ex.image
            self.caption.setText(f"Peak at x={m.peak[0]}, y={m.peak[1]} (ringed). {m.windows} windows of "
                                 f"{', '.join(map(str, m.window_sizes))} px scored, then small patches covered up "
                                 "inside the best three: bright is where the match lives (colour bar: high at top).")
            self.views.setCurrentIndex(IMAGE)
        elif ex.curve is not None:
            self._draw_audio()
            how = (f"windows of {ex.curve.window_s:.2f} s scored along the sound" if ex.curve.method == "windows"
                   else f"parts of {ex.curve.window_s:.2f} s silenced in turn: the curve is the score lost")
            self.caption.setText(f"Best match at {ex.curve.peak_s:.2f} s (red line); {how}. "
                                 "Click to play from there.")
            self.views.setCurrentIndex(AUDIO)
        elif ex.words is not None:
            self.text_view.setHtml(words_html(ex))
            self.caption.setText("")
            self.views.setCurrentIndex(TEXT)

    def _draw_image(self) -> None:
        ex = self.session.explanation
        if ex is None or ex.image is None:
            return
        pic = actions.overlay_picture(ex, self.opacity.value() / 100.0, composite_channels=self.jobs.composite)
        self.image.setImage(np.asarray(pic))
        self.image_plot.autoRange(padding=0.01)

    def _draw_audio(self) -> None:
        ex = self.session.explanation
        assert ex is not None and ex.curve is not None
        spec = actions.spectrogram_picture(ex)
        c = ex.curve
        end = float(c.times[-1]) + float(c.times[1] - c.times[0]) if len(c.times) > 1 else max(c.window_s, 1.0)
        self.spectrum.setImage(spec, levels=(0, 255))
        self.spectrum.setRect(0.0, 0.0, end, 1.0)
        s = c.scores.astype(np.float64)
        lo, hi = float(s.min()), float(s.max())
        self.curve.setData(c.times, 0.05 + 0.9 * (s - lo) / max(hi - lo, 1e-9))
        self.peak_line.setValue(c.peak_s)
        self.audio_view.setXRange(0, end, padding=0)
        self.audio_view.setYRange(0, 1, padding=0)

    def _audio_clicked(self, event: object) -> None:
        ex = self.session.explanation
        if ex is None or ex.curve is None:
            return
        pos = event.scenePos()  # type: ignore[attr-defined]
        t = float(self.audio_view.getPlotItem().vb.mapSceneToView(pos).x())
        self.play_from(max(0.0, t))

    def play_from(self, seconds: float) -> None:
        """Play the explained sound from `seconds` (QtMultimedia: never blocks)."""
        ex = self.session.explanation
        if ex is not None and ex.curve is not None:
            self.player.play(ex.target, start_s=seconds)

    def export_to(self, path: str | Path) -> Path:
        """The map as PNG (image or curve) or JSON (every kind), by the file's suffix."""
        ex = self.session.explanation
        if ex is None:
            raise ValueError("nothing explained yet")
        path = Path(path)
        if path.suffix.lower() == ".json":
            return export_json(path, ex.to_dict())
        return actions.save_picture(ex, path, self.opacity.value() / 100.0)

    def _export_dialog(self) -> None:
        ex = self.session.explanation
        if ex is None:
            return
        filters = "JSON (*.json)" if ex.words is not None else "PNG (*.png);;JSON (*.json)"
        path, _ = QFileDialog.getSaveFileName(self, "Export the map", "why.json" if ex.words else "why.png", filters)
        if path:
            try:
                self.export_to(path)
                self.jobs.status.emit(f"wrote {path}")
            except (OSError, ValueError, ClensError) as exc:
                self.jobs.status.emit(f"could not write {path}: {exc}")
