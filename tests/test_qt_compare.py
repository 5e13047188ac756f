"""The Compare panel: a second checkpoint on the open gallery in a worker; each search runs through both, the
lists side by side with their overlap@k, the figures of both in one table; a result of either list selects
the same item in the gallery; the comparison follows the gallery and is closed on request."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from qt_helpers import wait_idle  # noqa: E402

import tiny_models  # noqa: E402
from cl_core.search.query import SearchRequest  # noqa: E402
from clens_app.qt_compare_panel import HINT, ComparePanel  # noqa: E402
from media import make_gallery  # noqa: E402


@pytest.fixture
def panel(qtbot, controller, tmp_path):
    session, jobs = controller
    widget = ComparePanel(session, jobs)
    qtbot.addWidget(widget)
    jobs.open_gallery(make_gallery(tmp_path / "g", n=8) / "manifest.csv")
    wait_idle(qtbot, jobs)
    return widget


def test_a_second_model_answers_each_search_beside_the_first(qtbot, panel, tmp_path):
    session, jobs = panel.session, panel.jobs
    assert panel.title.text() == HINT and panel.open_button.isEnabled()
    second = tiny_models.make_native(tmp_path / "second", seed=11)
    jobs.open_comparison(second)
    wait_idle(qtbot, jobs)
    c = session.comparison
    assert c is not None and c.model.name and c.source == session.gallery_source and c.results is None
    names = [panel.figures.item(r, 0).text() for r in range(panel.figures.rowCount())]
    assert "R@1 image → text" in names and "text: effective rank" in names
    assert "Search" in panel.overlap.text()

    jobs.search(SearchRequest(texts=("caption number 3",), k=5))
    wait_idle(qtbot, jobs)
    c = session.comparison
    assert c.results is not None and c.results.request == session.query
    assert panel.first.rowCount() == len(session.results) and panel.second.rowCount() == len(c.results.shown)
    assert c.overlap["k"] == 5 and f"overlap@5: {c.overlap['shared']} of" in panel.overlap.text()

    panel.second.selectRow(0)
    hit = c.results.shown[0]
    (picked,) = session.gallery_selection
    row = session.index.rows[picked]
    assert (row.modality.value, row.source, row.text or "") == (hit.modality, hit.source, hit.text or "")
    assert len(c.coords) == len(c.index.rows) == len(panel.points.data)  # the second model's own map, all drawn
    (ring,) = panel.ringed.data  # the item selected is ringed in it
    assert (ring["x"], ring["y"]) == pytest.approx(tuple(c.coords[hit.row]))
    panel.first.selectRow(1)
    assert session.gallery_selection == {session.results[1].row}
    point = panel.points.points()[7]
    panel._point_clicked(panel.points, [point])
    (picked,) = session.gallery_selection
    assert session.index.rows[picked].source == c.index.rows[int(point.data())].source


def test_the_same_model_twice_agrees_and_closing_forgets_it(qtbot, panel, native_dir, tmp_path):
    session, jobs = panel.session, panel.jobs
    jobs.search(SearchRequest(texts=("caption number 1",), k=4))
    wait_idle(qtbot, jobs)
    jobs.open_comparison(native_dir)
    wait_idle(qtbot, jobs)
    c = session.comparison
    assert c.overlap["overlap"] == 1.0 and c.to_first is None  # the same items in the same order
    assert all(panel.figures.item(r, 1).text() == panel.figures.item(r, 2).text()
               for r in range(panel.figures.rowCount()) if "probe" not in panel.figures.item(r, 0).text())

    jobs.open_gallery(make_gallery(tmp_path / "h", n=5) / "manifest.csv")  # a new gallery: compared again
    wait_idle(qtbot, jobs)
    assert session.comparison is not None and session.comparison.source == session.gallery_source
    jobs.close_comparison()
    assert session.comparison is None and jobs.second_model is None and panel.title.text() == HINT
