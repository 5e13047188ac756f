"""The Slide panel: a slide tiled and scored in a worker, the heatmap drawn over the overview with glass clear,
the opacity applied, and a clicked tile made the query (its own tile then scores highest, with any copy of it: the slide repeats a small bank of patches)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from qt_helpers import wait_idle  # noqa: E402

from cl_core.demo.worlds import slide as sl  # noqa: E402
from clens_app.qt_slide_panel import HINT, SlidePanel, heat_rgba  # noqa: E402


def test_heat_colours_run_low_to_high_and_nan_is_clear():
    rgba = heat_rgba(np.array([[0.0, 1.0], [np.nan, 0.5]]), 200)
    assert rgba[0, 0, :3].sum() < rgba[0, 1, :3].sum() and rgba[1, 0, 3] == 0 and rgba[0, 0, 3] == 200


@pytest.fixture(scope="module")
def slide_files(tmp_path_factory):
    return sl.make_slide(tmp_path_factory.mktemp("slide"), size=512, seed=4, per_state=2)


def test_a_slide_is_scored_in_a_worker_and_a_clicked_tile_becomes_the_query(qtbot, controller, slide_files):
    session, jobs = controller
    panel = SlidePanel(session, jobs)
    qtbot.addWidget(panel)
    assert panel.summary.text() == HINT and not panel.show_button.isEnabled()
    panel.open_slide(slide_files.he)
    panel.query.setText("tumour necrosis present")
    assert panel.show_button.isEnabled()
    panel.show_button.click()
    wait_idle(qtbot, jobs)
    heat = session.slide
    assert heat is not None and heat.scores.shape == (16, 16)  # the tiny model reads 32-px pictures
    assert heat.overview is not None and heat.overview.shape == (512, 512, 3) and heat.overview_scale == 1.0
    drawn = panel.heat.image
    assert drawn.shape == (16, 16, 4)
    mask = np.load(slide_files.mask)
    glass = np.kron(mask == 0, np.ones((2, 2), bool))  # the mask is per 64-px patch, the tiles are 32 px
    np.testing.assert_array_equal(drawn[..., 3] == 0, glass)
    panel.opacity.setValue(100)
    assert panel.heat.image[..., 3].max() == 255
    r, c = np.argwhere(~glass)[5]
    panel.click_tile(c * 32 + 3, r * 32 + 3)  # overview pixels inside that tile
    again = session.slide
    assert again is not heat and again.query == [f"tile at x={c * 32}, y={r * 32}"]
    assert again.shown[r, c] == pytest.approx(np.nanmax(again.shown)) == pytest.approx(1.0, abs=1e-4)
    panel.click_tile(-5, 10)  # off the slide: nothing changes
    assert session.slide is again
    tile = slide_files.mask.parent / "tile.png"  # a patch file as the query, fused with the text
    from PIL import Image

    Image.fromarray(heat.overview[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32]).save(tile)
    panel.set_patches([str(tile)])
    panel.query.setText("")
    panel.show_button.click()
    wait_idle(qtbot, jobs)
    by_patch = session.slide
    assert by_patch.query == [str(tile)] and by_patch.embedding.from_cache == 16  # every row from the cache
    assert by_patch.shown[r, c] == pytest.approx(np.nanmax(by_patch.shown), abs=1e-4)
