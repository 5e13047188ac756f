"""The Markers panel: an H&E patch selected, its markers inferred in a worker from the other cases' mIF patches
(its own case left out), drawn as bars with bootstrap whiskers, the neighbours listed and selectable."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PIL import Image  # noqa: E402
from qt_helpers import wait_idle  # noqa: E402

from clens_app.qt_markers_panel import HINT, SOURCE_ROLE, MarkersPanel  # noqa: E402


def tissue_gallery(folder, n: int = 8):
    """n cases, each an H&E picture and an mIF stack (DAPI, panCK, CD8) sharing a sample id."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["sample,image,multichannel"]
    for i in range(n):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(folder / f"c{i}-he.png")
        stack = rng.random((3, 24, 24)).astype(np.float32) + i
        np.save(folder / f"c{i}-mif.npy", stack)
        (folder / f"c{i}-mif.npy.channels.json").write_text(json.dumps(["DAPI", "panCK", "CD8"]))
        lines.append(f"c{i},c{i}-he.png,c{i}-mif.npy")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


@pytest.fixture
def panel(qtbot, controller, tmp_path):
    session, jobs = controller
    widget = MarkersPanel(session, jobs)
    qtbot.addWidget(widget)
    jobs.open_gallery(tissue_gallery(tmp_path / "t"))
    wait_idle(qtbot, jobs)
    return widget


def test_a_selected_patch_gets_its_markers_from_the_other_cases(qtbot, panel):
    session, jobs = panel.session, panel.jobs
    assert session.index is not None and panel.summary.text() == HINT and not panel.run_button.isEnabled()
    image_rows = [r for r, row in enumerate(session.index.rows) if row.modality.value == "image"]
    session.select_gallery([image_rows[2]])
    assert panel.run_button.isEnabled()
    panel.k.setValue(3)
    panel.run_button.click()
    wait_idle(qtbot, jobs)
    got = session.markers
    assert got is not None and got.inferred.markers == ["DAPI", "panCK", "CD8"]
    own = session.index.rows[image_rows[2]].sample_id
    assert got.reference_count == 7 and all(f"{own}-mif" not in s for s in got.neighbour_sources)
    bars = [i for i in panel.plot.items if hasattr(i, "opts") and "height" in i.opts]
    np.testing.assert_allclose(bars[0].opts["height"], got.inferred.value)
    assert panel.neighbours.count() == 3 and "not a measurement" in panel.summary.text()
    panel._neighbour_clicked(panel.neighbours.item(0))
    (picked,) = session.gallery_selection
    assert session.index.rows[picked].source == panel.neighbours.item(0).data(SOURCE_ROLE)
    assert not panel.run_button.isEnabled()  # an mIF patch is selected now, not an H&E one


def test_what_if_shifts_the_selected_cases_profiles_under_an_edited_text(qtbot, panel, tmp_path):
    session, jobs = panel.session, panel.jobs
    image_rows = [r for r, row in enumerate(session.index.rows) if row.modality.value == "image"]
    session.select_gallery(image_rows[:3])
    panel.text.setText("stage II carcinoma, sparse CD8")
    assert not panel.what_if_button.isEnabled()  # no edited text yet
    panel.copy_button.click()
    assert panel.edited.text() == panel.text.text() and not panel.what_if_button.isEnabled()  # the same text
    panel.edited.setText("stage IV carcinoma, sparse CD8")
    assert panel.what_if_button.isEnabled()
    panel.what_if_button.click()
    wait_idle(qtbot, jobs)
    got = session.counterfactual
    assert got is not None and len(got.patches) == 3 and got.edited_text == "stage IV carcinoma, sparse CD8"
    assert got.original.shape == (3, 3) and got.interval_over == "patches and neighbours"
    bars = [i for i in panel.shift_plot.items if hasattr(i, "opts") and "height" in i.opts]
    np.testing.assert_allclose(bars[0].opts["height"], got.mean)
    assert "not mechanisms" in panel.shift_summary.text()
    jobs.open_gallery(tissue_gallery(tmp_path / "other", n=4))
    wait_idle(qtbot, jobs)
    assert session.counterfactual is None and not bars[0].scene()  # another gallery: the shift is gone
