"""The Diagnostics panel: the open gallery measured in a worker; spectra, cosines and N_k drawn; every figure
with its definition; a hub clicked is selected in the gallery; exported; a late measurement of a closed
gallery refused."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("PySide6")

from qt_helpers import wait_idle  # noqa: E402

from clens_app.qt_diagnostics_panel import HINT, ROW_ROLE, DiagnosticsPanel  # noqa: E402
from media import make_gallery  # noqa: E402


@pytest.fixture
def panel(qtbot, controller, tmp_path):
    session, jobs = controller
    widget = DiagnosticsPanel(session, jobs)
    qtbot.addWidget(widget)
    return widget


def test_the_open_gallery_is_measured_drawn_and_its_hubs_selectable(qtbot, panel, tmp_path):
    session, jobs = panel.session, panel.jobs
    assert not panel.measure_button.isEnabled() and panel.summary.text() == HINT
    jobs.open_gallery(make_gallery(tmp_path / "g", n=12) / "manifest.csv")
    wait_idle(qtbot, jobs)
    assert panel.measure_button.isEnabled() and not panel.export_button.isEnabled()
    panel.k.setValue(3)
    panel.measure_button.click()
    wait_idle(qtbot, jobs)
    diagnosis = session.diagnosis
    assert diagnosis is not None and diagnosis.embedding is session.gallery
    report = diagnosis.report
    assert report["pairs"]["image|audio"]["hubness image->audio"]["k"] == 3
    assert "image and audio: centroids" in panel.summary.text() and "effective rank" in panel.summary.text()

    spectra = panel.spectrum_plot.listDataItems()
    assert len(spectra) == 3  # image, audio, text
    assert all("effective rank" in item.name() for item in spectra)
    assert [panel.pair.itemData(i) for i in range(panel.pair.count())] == list(report["pairs"])
    panel.pair.setCurrentIndex(list(report["pairs"]).index("image|text"))
    cosine_names = {item.name() for item in panel.cosine_plot.listDataItems()}
    assert cosine_names == {"within image", "within text", "image ↔ text: any two", "image ↔ text: a sample's own"}
    assert len(panel.hub_plot.listDataItems()) == 4  # within each, and both ways across

    groups = {panel.numbers.topLevelItem(i).text(0): panel.numbers.topLevelItem(i)
              for i in range(panel.numbers.topLevelItemCount())}
    assert {"image ↔ text", "image", "text", "audio"} <= set(groups)
    pair = groups["image ↔ text"]
    gap = next(pair.child(i) for i in range(pair.childCount()) if pair.child(i).text(0) == "modality gap")
    assert gap.text(1) == f"{report['pairs']['image|text']['centroid_distance']:.3f}"
    assert "modality gap" in gap.toolTip(0)

    group = panel.hubs.topLevelItem(0)
    assert group.text(0).startswith("within image") and group.childCount() > 0
    hub = group.child(0)
    emb_row = hub.data(0, ROW_ROLE)
    panel._hub_clicked(hub, 0)
    (selected,) = session.gallery_selection
    assert session.index.rows[selected].source == session.gallery.rows[emb_row].source
    assert session.gallery.rows[emb_row].modality.value == "image"

    assert panel.export_button.isEnabled()
    written = json.loads(panel.export_to(tmp_path / "d.json").read_text())
    assert written["counts"] == report["counts"] and "hubness" in written["definitions"]
    assert panel.export_to(tmp_path / "d.png").stat().st_size > 0


def test_a_measurement_of_a_gallery_no_longer_open_is_refused(qtbot, panel, tmp_path):
    session, jobs = panel.session, panel.jobs
    jobs.open_gallery(make_gallery(tmp_path / "g", n=6) / "manifest.csv")
    wait_idle(qtbot, jobs)
    jobs.diagnose(3)
    wait_idle(qtbot, jobs)
    old = session.diagnosis
    assert old is not None and panel.numbers.topLevelItemCount() > 0
    jobs.open_gallery(make_gallery(tmp_path / "h", n=5) / "manifest.csv")
    wait_idle(qtbot, jobs)
    assert session.diagnosis is None and panel.numbers.topLevelItemCount() == 0 and panel.summary.text() == HINT
    assert not session.set_diagnosis(old) and session.diagnosis is None


def test_with_a_second_model_open_both_are_measured_and_drawn_side_by_side(qtbot, panel, tmp_path):
    import tiny_models

    session, jobs = panel.session, panel.jobs
    jobs.open_gallery(make_gallery(tmp_path / "g", n=6) / "manifest.csv")
    wait_idle(qtbot, jobs)
    jobs.open_comparison(tiny_models.make_native(tmp_path / "second", seed=5))
    wait_idle(qtbot, jobs)
    jobs.diagnose(3)
    wait_idle(qtbot, jobs)
    d = session.diagnosis
    assert d is not None and d.second is not None and d.second.embedding is session.comparison.embedding
    names = [item.name() for item in panel.spectrum_plot.listDataItems()]
    assert len(names) == 6 and sum(name.startswith(d.second_name) for name in names) == 3
    assert not panel.numbers.isColumnHidden(2) and "Second model" in panel.summary.text()
    pair = panel.numbers.topLevelItem(0)
    gap = next(pair.child(i) for i in range(pair.childCount()) if pair.child(i).text(0) == "modality gap")
    first_pair = next(iter(d.second.report["pairs"]))
    assert gap.text(2) == f"{d.second.report['pairs'][first_pair]['centroid_distance']:.3f}"
