"""The 'Why it matched' panel: a selected result explained in a worker, drawn as a map over the picture (opacity
slider), a curve over the sound's spectrogram (a click plays from there) or shaded words; exported; kept per
(model, item, query)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("PySide6")

from qt_helpers import wait_idle  # noqa: E402

from cl_core.search.query import SearchRequest  # noqa: E402
from clens_app.qt_explain_panel import AUDIO, EMPTY, IMAGE, TEXT, ExplainPanel  # noqa: E402
from media import make_gallery  # noqa: E402


@pytest.fixture
def panel(qtbot, controller, tmp_path):
    session, jobs = controller
    widget = ExplainPanel(session, jobs)
    qtbot.addWidget(widget)
    jobs.open_gallery(make_gallery(tmp_path / "g", n=4) / "manifest.csv")
    wait_idle(qtbot, jobs)
    return widget


def _row(session, modality: str) -> int:
    assert session.index is not None
    return next(i for i, r in enumerate(session.index.rows) if r.modality.value == modality)


def test_a_selected_result_is_explained_and_drawn_by_its_kind(qtbot, panel, tmp_path, monkeypatch):
    session, jobs = panel.session, panel.jobs
    assert panel.views.currentIndex() == EMPTY and not panel.explain_button.isEnabled()
    jobs.search(SearchRequest(texts=("caption number 2",), k=5))
    wait_idle(qtbot, jobs)
    image_row = _row(session, "image")
    session.select_gallery([image_row])
    assert panel.explain_button.isEnabled()
    panel.explain_button.click()
    wait_idle(qtbot, jobs)
    ex = session.explanation
    assert ex is not None and ex.image is not None and ex.target.endswith(".png")
    assert panel.views.currentIndex() == IMAGE and not panel.opacity.isHidden()
    assert ex.query == ["caption number 2"] and "matches caption number 2" in panel.title.text()
    faint = panel.image.image.copy()
    panel.opacity.setValue(100)
    assert panel.image.image.shape == faint.shape and not np.array_equal(panel.image.image, faint)
    assert panel.export_to(tmp_path / "why.png").stat().st_size > 0
    written = json.loads(panel.export_to(tmp_path / "why.json").read_text())
    assert written["image"]["peak_xy"] == list(ex.image.peak)

    assert jobs.explain_row(image_row) is None and session.explanation is ex  # kept: no second job

    text_row = _row(session, "text")
    session.select_gallery([text_row])
    panel.explain_button.click()
    wait_idle(qtbot, jobs)
    assert panel.views.currentIndex() == TEXT and session.explanation.words is not None
    shown = panel.text_view.toHtml()
    assert all(w in shown for w in ("caption", "number")) and "background-color" in shown

    played: list[tuple[str, float]] = []
    monkeypatch.setattr(panel.player, "play", lambda path, seconds=None, start_s=0.0: played.append((path, start_s)))
    session.select_gallery([_row(session, "audio")])
    panel.explain_button.click()
    wait_idle(qtbot, jobs)
    curve = session.explanation.curve
    assert panel.views.currentIndex() == AUDIO and curve is not None
    assert panel.spectrum.image is not None and panel.spectrum.image.shape[0] == 128
    panel.play_from(curve.peak_s)
    assert played == [(session.explanation.target, curve.peak_s)]


def test_a_map_made_by_another_model_is_refused(qtbot, panel, native_model):
    session, jobs = panel.session, panel.jobs
    jobs.search(SearchRequest(texts=("caption number 1",), k=3))
    wait_idle(qtbot, jobs)
    jobs.explain_row(_row(session, "image"))
    wait_idle(qtbot, jobs)
    old = session.explanation
    assert old is not None
    session.set_model(native_model, "another fingerprint")
    assert session.explanation is None and panel.views.currentIndex() == EMPTY
    assert not session.set_explanation(old)  # computed with the previous model


def test_explaining_without_a_query_says_what_to_do(qtbot, panel):
    messages: list[str] = []
    panel.jobs.status.connect(messages.append)
    assert panel.jobs.explain_row(0) is None
    assert messages and messages[-1].startswith("search first")
