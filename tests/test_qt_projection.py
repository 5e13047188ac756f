"""The Projection panel: the map of every gallery row, the query placed by the fitted transform, hits
outlined, a box selection shared with the results table (both ways), and export."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QRectF, Qt  # noqa: E402
from qt_helpers import wait_idle  # noqa: E402

from cl_core import actions  # noqa: E402
from clens_app.qt_projection_panel import ProjectionPanel  # noqa: E402
from clens_app.qt_search_panel import SearchPanel  # noqa: E402
from media import make_gallery  # noqa: E402


@pytest.fixture
def mapped(qtbot, controller, tmp_path):
    session, jobs = controller
    panel, search = ProjectionPanel(session, jobs), SearchPanel(session, jobs)
    for w in (panel, search):
        qtbot.addWidget(w)
    jobs.open_gallery(make_gallery(tmp_path / "g", n=10) / "manifest.csv")
    wait_idle(qtbot, jobs)
    panel.run()
    wait_idle(qtbot, jobs)
    return session, jobs, panel, search


def test_every_row_is_drawn_where_the_map_puts_it(mapped):
    session, _, panel, _ = mapped
    assert session.projection is not None
    np.testing.assert_allclose(panel.points.getData()[0], session.projection.coords[:, 0])
    assert len(panel.points.data) == len(session.index.rows) == 30
    assert panel.categories == ["audio", "image", "text"] and "PCA of all 30" in panel.info.text()


def test_query_lands_where_the_fitted_transform_puts_it_and_hits_are_outlined(qtbot, mapped):
    session, jobs, panel, search = mapped
    search.query.setText("caption number 3")
    search.k.setValue(4)
    search.run_search()
    wait_idle(qtbot, jobs)
    assert session.query_point is not None
    expected = session.projection.projection.place(session.query_vector)[0]
    x, y = panel.query.getData()
    assert (x[0], y[0]) == pytest.approx((float(expected[0]), float(expected[1])), abs=1e-5)
    hit_rows = [h.row for h in session.results]
    np.testing.assert_allclose(panel.hits.getData()[0], session.projection.coords[hit_rows, 0])


def test_box_selection_in_the_map_selects_results_and_back(qtbot, mapped):
    session, jobs, panel, search = mapped
    search.query.setText("caption number 5")
    search.k.setValue(6)
    search.run_search()
    wait_idle(qtbot, jobs)
    hits = session.results
    target = session.projection.coords[hits[0].row]
    panel._box(QRectF(float(target[0]) - 1e-6, float(target[1]) - 1e-6, 2e-6, 2e-6), False)
    assert session.gallery_selection == frozenset({hits[0].row})
    assert {i.row() for i in search.table.selectedIndexes()} == {0}
    assert len(panel.selected.data) == 1  # outlined; the rest dimmed
    assert panel.points.data["brush"][1].color().alpha() < 255
    search.table.selectRow(2)  # and back: a result chosen in the table is selected in the map
    assert session.gallery_selection == frozenset({hits[2].row})
    np.testing.assert_allclose(panel.selected.getData()[0], [session.projection.coords[hits[2].row, 0]])
    search.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)  # sorted by modality: rows still mean their hit
    shown = [search.table.item(r, 3).text() for r in range(search.table.rowCount())]
    assert shown == sorted(shown) and sorted(shown) == sorted(h.modality for h in hits)
    first = int(search.table.item(0, 0).text()) - 1  # the rank column names the hit
    search.table.selectRow(0)
    assert session.gallery_selection == frozenset({hits[first].row})
    session.select_gallery({hits[first].row})
    assert {i.row() for i in search.table.selectedIndexes()} == {0}


def test_lasso_selects_the_points_inside_its_shape(mapped):
    from clens_app.qt_projection_panel import inside_polygon

    square = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float)
    notch = np.array([[0, 0], [4, 0], [4, 4], [2, 1], [0, 4]], float)  # concave: (2, 3) lies outside
    pts = np.array([[1, 1], [2, 3], [5, 1], [3, 0.5], [-1, 2]], np.float32)
    assert inside_polygon(pts, square).tolist() == [True, True, False, True, False]
    assert inside_polygon(pts, notch).tolist() == [True, False, False, True, False]
    session, _, panel, _ = mapped
    panel.select_mode.setCurrentText("lasso")
    assert panel.view.lasso
    c = session.projection.coords
    target = c[4]
    tri = np.array([target + (-1e-5, -1e-5), target + (1e-5, -1e-5), target + (0, 1e-5)])
    panel.view.lasso_selected.emit(tri, False)
    expected = {i for i in range(len(c)) if np.allclose(c[i], target, atol=5e-6)}
    assert session.gallery_selection == frozenset(expected) and 4 in expected
    other = c[7]
    panel.view.lasso_selected.emit(np.array([other + (-1e-5, -1e-5), other + (1e-5, -1e-5), other + (0, 1e-5)]),
                                   True)  # Ctrl adds
    assert {4, 7} <= session.gallery_selection


def test_hover_previews_the_item_and_a_sound_plays_on_click(qtbot, mapped, monkeypatch):
    session, jobs, panel, _ = mapped
    rows = session.index.rows
    text = next(i for i, r in enumerate(rows) if r.text)
    panel.show_item(text)
    assert rows[text].text in panel.preview.text()
    image = next(i for i, r in enumerate(rows) if r.modality.value == "image")
    with qtbot.waitSignal(jobs.thumbnails_ready, timeout=60_000):
        panel.show_item(image)  # not drawn yet: drawn in the background, then shown
    wait_idle(qtbot, jobs)
    assert "<img" in panel.preview.text() and str(panel.thumbs[rows[image].source]) in panel.preview.text()
    played = []
    monkeypatch.setattr(panel.player, "play", lambda path, seconds=None: played.append((path, seconds)))
    sound = next(i for i, r in enumerate(rows) if r.modality.value == "audio")

    class Spot:
        def data(self):
            return sound

    panel._clicked(None, [Spot()])
    assert played == [(rows[sound].source, 3.0)] and session.gallery_selection == frozenset({sound})


def test_shift_drag_in_lasso_mode_draws_a_shape_and_selects_inside_it(mapped):
    """The drag itself: the points the mouse passes through become the lasso's outline."""
    from PySide6.QtCore import QPointF

    session, _, panel, _ = mapped
    panel.select_mode.setCurrentText("lasso")
    target = session.projection.coords[4]
    box = panel.view
    path = [target + d for d in ((-1e-5, -1e-5), (1e-5, -1e-5), (1e-5, 1e-5), (-1e-5, 1e-5))]
    scene = [box.mapFromView(QPointF(float(x), float(y))) for x, y in path]  # item coordinates, as events give

    class Drag:  # what pyqtgraph hands a ViewBox while the mouse is dragged
        def __init__(self, i: int) -> None:
            self.i = i

        def modifiers(self):
            return Qt.KeyboardModifier.ShiftModifier

        def button(self):
            return Qt.MouseButton.LeftButton

        def buttonDownPos(self):  # noqa: N802 - pyqtgraph's name
            return scene[0]

        def pos(self):
            return scene[self.i]

        def isStart(self):  # noqa: N802
            return self.i == 1

        def isFinish(self):  # noqa: N802
            return self.i == len(scene) - 1

        def accept(self):
            pass

    got = []
    box.lasso_selected.connect(lambda polygon, add: got.append((polygon, add)))
    for i in range(1, len(scene)):
        box.mouseDragEvent(Drag(i))
    assert len(got) == 1 and len(got[0][0]) == 4 and got[0][1] is False
    np.testing.assert_allclose(got[0][0], np.array(path), atol=1e-6)
    assert 4 in session.gallery_selection


def test_colour_by_a_manifest_column_legend_or_colour_bar(mapped, monkeypatch):
    session, _, panel, _ = mapped
    names = [panel.colour.itemText(i) for i in range(panel.colour.count())]
    assert names == ["modality", "label", "site", "depth"]
    view = panel.view.viewRange()
    panel.colour.setCurrentText("site")
    assert panel.categories == ["site0", "site1", "site2"] and not panel.colour_bar.isVisible()
    sites = [session.index.meta["site"][i] for i in range(len(session.index.rows))]
    assert [panel.categories[c] for c in panel.codes] == sites
    assert panel.view.viewRange() == view  # recolouring keeps the view
    monkeypatch.setattr("cl_core.analysis.colouring.CONTINUOUS_MIN_DISTINCT", 5)
    panel.colour.setCurrentText("depth")
    assert panel.categories == [] and panel.colour_bar.isVisible()
    depth = np.array([float(v) for v in session.index.meta["depth"]])
    assert panel.colour_bar.levels() == pytest.approx((0.0, 4.5))
    deepest, shallowest = int(np.argmax(depth)), int(np.argmin(depth))
    assert panel.codes[deepest] == 63 and panel.codes[shallowest] == 0
    brushes = panel.points.data["brush"]
    assert brushes[deepest].color() != brushes[shallowest].color()


def test_map_exports_png_and_svg_and_a_new_gallery_drops_it(qtbot, mapped, tmp_path):
    session, jobs, panel, _ = mapped
    png, svg = panel.export_to(tmp_path / "map.png"), panel.export_to(tmp_path / "map.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg.read_bytes()[:400]
    stale = actions.Projected(session.projection.projection, "another-model", session.projection.gallery)
    assert not session.set_projection(stale)
    jobs.open_gallery(make_gallery(tmp_path / "other", n=4))
    wait_idle(qtbot, jobs)
    assert session.projection is None and len(panel.points.data) == 0


def test_level_of_detail_density_when_zoomed_out_points_when_zoomed_in(mapped, monkeypatch):
    from clens_app import qt_projection_panel as mod

    session, _, panel, _ = mapped
    monkeypatch.setattr(mod, "MAX_DRAWN", 5)  # 30 points stand in for a million
    panel.view.autoRange()
    panel._draw_points()
    assert panel.density.isVisible() and len(panel.points.data) == 0
    assert panel.density.image.sum() > 0
    x, y = (float(v) for v in session.projection.coords[7])
    panel.view.setRange(xRange=(x - 1e-4, x + 1e-4), yRange=(y - 1e-4, y + 1e-4), padding=0)
    panel._draw_points()
    assert not panel.density.isVisible()
    assert 7 in panel.points.data["data"].tolist() and len(panel.points.data) <= 5


def test_results_grid_thumbnails_export_and_more_like_this(qtbot, mapped, tmp_path):
    import csv
    import json

    session, jobs, _, search = mapped
    search.query.setText("caption number 4")
    search.k.setValue(12)
    with qtbot.waitSignal(jobs.thumbnails_ready, timeout=60_000):
        search.run_search()
    wait_idle(qtbot, jobs)  # thumbnails come in batches as drawn: all are in once the job is done
    files = [h for h in session.results if not h.text]
    assert files and all(str(search.thumbs[h.source]).endswith("-128.png") for h in files)
    search.as_grid.setChecked(True)
    assert search.views.currentWidget() is search.grid and search.grid.count() == len(session.results)
    for r, h in enumerate(session.results):
        assert search.grid.item(r).icon().isNull() == bool(h.text)  # pictures for files, text for texts
    rows = list(csv.DictReader(open(search.export_to(tmp_path / "r.csv"), encoding="utf-8")))
    assert [r["source"] for r in rows] == [h.source for h in session.results]
    samples = [int(h.sample_id[1:]) for h in session.results]  # the manifest's own columns travel along
    assert [r["site"] for r in rows] == [f"site{i % 3}" for i in samples]
    assert [float(r["z"]) for r in rows] == pytest.approx([h.z for h in session.results])
    data = json.loads(search.export_to(tmp_path / "r.json").read_text())
    assert data["query"] == ["caption number 4"] and len(data["hits"]) == len(rows)
    assert [h["meta"]["depth"] for h in data["hits"]] == [f"{i * 0.5:.1f}" for i in samples]
    image = next(h for h in files if h.modality == "image")
    jobs.more_like([image.row])
    wait_idle(qtbot, jobs)
    itself = [h for h in session.results if h.row == image.row]  # the query item finds itself, at cosine 1
    assert session.query.vector_sources == (image.source,) and itself
    assert itself[0].score == pytest.approx(1.0, abs=1e-4)
