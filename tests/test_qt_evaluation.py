"""The Evaluation panel: the open gallery evaluated in a worker (only the prompts run through the model);
Recall@K as a table and bars, the zero-shot confusion as a heatmap named by class; bad prompts refused before
any work; exported; a late evaluation of a closed gallery refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("PySide6")

from qt_helpers import wait_idle  # noqa: E402

from clens_app.qt_evaluation_panel import HINT, EvaluationPanel  # noqa: E402
from media import make_gallery  # noqa: E402


@pytest.fixture
def panel(qtbot, controller, tmp_path):
    session, jobs = controller
    widget = EvaluationPanel(session, jobs)
    qtbot.addWidget(widget)
    jobs.open_gallery(make_gallery(tmp_path / "g", n=8) / "manifest.csv")
    wait_idle(qtbot, jobs)
    return widget


def test_the_open_gallery_is_evaluated_and_drawn(qtbot, panel, tmp_path):
    session, jobs = panel.session, panel.jobs
    assert panel.run_button.isEnabled() and panel.summary.text() == HINT
    panel.templates.setText("a photo of a {} | {}")
    panel.run_button.click()
    wait_idle(qtbot, jobs)
    ev = session.evaluation
    assert ev is not None and ev.embedding is session.gallery
    assert set(ev.retrieval) == {f"{a}->{b}" for a in ("image", "audio", "text") for b in ("image", "audio", "text")
                                 if a != b}
    assert ev.zero_shot["image"]["templates"] == ["a photo of a {}", "{}"]
    assert "Zero-shot image" in panel.summary.text()

    assert panel.table.rowCount() == 6
    first = panel.table.item(0, 0).text().replace(" → ", "->")
    assert panel.table.item(0, 1).text() == f"{ev.retrieval[first]['R@1']:.3f}"
    bars = [item for item in panel.bars.items if hasattr(item, "opts") and "width" in item.opts]
    assert len(bars) == 3  # R@1, R@5, R@10
    np.testing.assert_allclose(bars[0].opts["width"], [d["R@1"] for d in ev.retrieval.values()])

    z = ev.zero_shot["image"]
    assert panel.zs_modality.currentText() == "image" and panel.labels == z["labels"] == ["cat", "dog"]
    assert panel.image.image.shape == (2, 2)
    rows = np.asarray(z["confusion"]).sum(axis=1)
    np.testing.assert_allclose(panel.image.image[0, 0], z["confusion"][0][0] / rows[0])
    assert "of" in panel.describe(0, 1) and "“cat”" in panel.describe(0, 1)

    written = json.loads(panel.export_to(tmp_path / "e.json").read_text())
    assert written["retrieval"] == json.loads(json.dumps(ev.retrieval))
    assert panel.export_to(tmp_path / "e.png").stat().st_size > 0


def test_a_prompt_without_a_place_for_the_label_is_refused_before_any_work(qtbot, panel):
    errors: list[str] = []
    panel.jobs.error.connect(errors.append)
    panel.templates.setText("a photo | {}")
    panel.run_button.click()
    assert not panel.jobs.busy and panel.session.evaluation is None
    assert errors and "'a photo'" in errors[0] and "where the label goes" in errors[0]


def test_an_evaluation_of_a_gallery_no_longer_open_is_refused(qtbot, panel, tmp_path):
    session, jobs = panel.session, panel.jobs
    jobs.evaluate()
    wait_idle(qtbot, jobs)
    old = session.evaluation
    assert old is not None and panel.table.rowCount() > 0
    jobs.open_gallery(make_gallery(tmp_path / "h", n=5) / "manifest.csv")
    wait_idle(qtbot, jobs)
    assert session.evaluation is None and panel.table.rowCount() == 0 and panel.summary.text() == HINT
    assert not session.set_evaluation(old)


def test_export_where_no_file_can_be_written_is_one_message(qtbot, panel, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    panel.jobs.evaluate()
    wait_idle(qtbot, panel.jobs)
    errors: list[str] = []
    panel.jobs.error.connect(errors.append)
    (tmp_path / "a-file").write_text("x")
    target = tmp_path / "a-file" / "e.json"  # its folder is a file: nothing can be written there
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    panel.export_button.click()
    assert len(errors) == 1 and errors[0].startswith(f"{target}: could not export") and not target.exists()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "e.json"), ""))
    panel.export_button.click()
    assert json.loads((tmp_path / "e.json").read_text())["retrieval"] and len(errors) == 1
