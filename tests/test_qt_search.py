"""The gallery search panel: open a gallery through a worker, search with text and selected inputs, threshold."""

from __future__ import annotations

import numpy as np
import pytest

from cl_core.choices import DEFAULT_MIN_RELEVANCE

pytest.importorskip("PySide6")

from qt_helpers import wait_idle  # noqa: E402

from cl_core.embed.items import embed_paths  # noqa: E402
from cl_core.session import Session  # noqa: E402
from clens_app.jobs import Jobs  # noqa: E402
from clens_app.qt_search_panel import SearchPanel  # noqa: E402
from media import make_gallery  # noqa: E402


@pytest.fixture
def panel(qtbot, controller, tmp_path):
    session, jobs = controller
    widget = SearchPanel(session, jobs)
    qtbot.addWidget(widget)
    return widget


def test_open_gallery_then_search_by_selected_input_and_text(qtbot, panel, tmp_path):
    session, jobs = panel.session, panel.jobs
    folder = make_gallery(tmp_path / "g", n=8)
    assert not panel.search_button.isEnabled()
    assert panel.only_relevant.isChecked() and panel.min_relevance.value() == pytest.approx(DEFAULT_MIN_RELEVANCE)
    panel.only_relevant.setChecked(False)  # this tiny model's scores mean little: every hit up to k
    jobs.open_gallery(folder / "manifest.csv")
    wait_idle(qtbot, jobs)
    assert session.index is not None and len(session.gallery.rows) == 24
    assert "24 items" in panel.summary.text() and panel.search_button.isEnabled()
    assert [panel.target.itemText(i) for i in range(panel.target.count())] == ["any modality", "image", "text",
                                                                               "audio"]
    session.add_result(embed_paths(session.model, [folder / "s5.png"]))
    session.select([0])
    assert panel.parts.text() == "Query: (empty)"  # a selection joins the query only when asked
    panel.use_selection.setChecked(True)
    assert "image s5.png" in panel.parts.text()
    panel.target.setCurrentIndex(panel.target.findText("image"))
    panel.k.setValue(3)
    panel.run_search()
    wait_idle(qtbot, jobs)
    assert panel.table.rowCount() == 3
    assert panel.table.item(0, 5).text() == "s5.png" and panel.table.item(0, 3).text() == "image"
    assert float(panel.table.item(0, 2).text()) == pytest.approx(1.0, abs=1e-4)

    panel.use_selection.setChecked(False)
    panel.query.setText("caption number 5")
    panel.target.setCurrentIndex(panel.target.findText("text"))
    panel.run_search()
    wait_idle(qtbot, jobs)
    assert panel.table.item(0, 5).text() == "caption number 5"

    panel.only_relevant.setChecked(True)
    panel.min_relevance.setValue(1.0)
    panel.query.setText("an unrelated sentence that is in no caption")
    panel.run_search()
    wait_idle(qtbot, jobs)
    assert session.results_below_threshold and panel.table.rowCount() == len(session.results) >= 1
    assert panel.empty.text().startswith("Nothing relevant: no result reaches 100%. The closest items are shown")
    panel.target.setCurrentIndex(panel.target.findText("image"))
    panel.run_search()
    wait_idle(qtbot, jobs)
    assert session.results_below_threshold and session.results
    assert all(h.source in panel.thumbs for h in session.results)  # the closest items are drawn too


def test_a_new_model_drops_the_gallery(qtbot, panel, tmp_path):
    session, jobs = panel.session, panel.jobs
    jobs.open_gallery(make_gallery(tmp_path / "g", n=3))
    wait_idle(qtbot, jobs)
    assert session.index is not None
    session.set_model(session.model)
    assert session.index is None and not panel.search_button.isEnabled() and panel.table.rowCount() == 0


def test_stack_results_are_drawn_in_the_channels_chosen(qtbot, native_model, media_dir, tmp_path):
    """mIF stacks in the results grid: a sensible three channels first; picking others draws them again."""
    import shutil

    from PIL import Image

    folder = tmp_path / "stacks"
    folder.mkdir()
    for name in ("stack.npy", "stack.npy.channels.txt", "mif.ome.tif"):
        shutil.copy(media_dir / name, folder / name)
    session = Session()
    jobs = Jobs(session)
    jobs.settings.cache_dir = tmp_path / "cache"
    session.set_model(native_model)
    panel = SearchPanel(session, jobs)
    qtbot.addWidget(panel)
    picker = panel.composite
    assert not picker.isHidden() and picker.chosen() == ("panCK", "CD8", "DAPI")
    jobs.open_gallery(folder)
    wait_idle(qtbot, jobs)
    jobs.more_like([0], k=2)
    wait_idle(qtbot, jobs)
    stacks = [h for h in session.results if h.modality == "multichannel"]
    assert len(stacks) == 2
    before = {h.source: panel.thumbs[h.source] for h in stacks}
    picker.pickers[0].setCurrentText("DAPI")  # red and blue both DAPI, no green
    picker.pickers[1].setCurrentText("(none)")
    wait_idle(qtbot, jobs)
    assert jobs.composite == ("DAPI", "", "DAPI")
    for h in stacks:
        assert panel.thumbs[h.source] != before[h.source]  # drawn again, cached apart
        rgb = np.asarray(Image.open(panel.thumbs[h.source]).convert("RGB")).astype(int)
        assert (rgb[..., 0] == rgb[..., 2]).all() and (rgb[..., 1] == 0).all() and rgb[..., 0].std() > 10
    jobs.shutdown()


def test_the_query_line_says_when_the_models_own_fusion_combines_it(panel, monkeypatch, tmp_path):
    session = panel.session
    folder = make_gallery(tmp_path / "g", n=2)
    session.add_result(embed_paths(session.model, [folder / "s1.wav"]))
    session.select([0])
    panel.use_selection.setChecked(True)
    panel.query.setText("caption number 1")
    assert panel.fusion.currentText() == "auto" and "weighted mean" in panel.parts.text()
    monkeypatch.setattr(session.model, "objective", "symile")
    panel.query.setText("caption number 0")  # the line is redrawn as the query changes
    assert "symile fusion: the model was trained with the symile objective" in panel.parts.text()
    panel.fusion.setCurrentText("mean")
    assert "symile" not in panel.parts.text()
