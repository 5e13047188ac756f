"""Widget tests: one panel at a time, built from a Session, offscreen."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPointF, QSettings, Qt  # noqa: E402
from qt_helpers import drop_files  # noqa: E402

from cl_core.embed.items import embed_paths  # noqa: E402
from cl_core.session import Session  # noqa: E402
from clens_app.jobs import Jobs  # noqa: E402
from clens_app.qt_drop_panel import DropPanel  # noqa: E402
from clens_app.qt_messages_panel import MessagesPanel  # noqa: E402
from clens_app.qt_model_panel import ModelPanel  # noqa: E402
from clens_app.qt_similarity_panel import SimilarityPanel  # noqa: E402


@pytest.fixture
def session_jobs(qtbot):
    session = Session()
    jobs = Jobs(session)
    yield session, jobs
    assert jobs.shutdown()


def test_model_panel_opens_dropped_folder_and_shows_info(qtbot, session_jobs, native_dir):
    session, jobs = session_jobs
    panel = ModelPanel(session, jobs)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(jobs.job_done, timeout=60_000):
        drop_files(panel, [native_dir])
    assert session.model is not None and session.model.format == "native"
    shown = {panel.tree.topLevelItem(i).text(0): panel.tree.topLevelItem(i).text(1)
             for i in range(panel.tree.topLevelItemCount())}
    assert shown["embedding dim"] == "16"
    assert shown["modalities"] == "image, text, audio, multichannel"
    assert "tiny-native" in panel.title.text()


def test_model_panel_reports_unloadable_checkpoint(qtbot, session_jobs, tmp_path):
    session, jobs = session_jobs
    panel = ModelPanel(session, jobs)
    messages = MessagesPanel(session, jobs)
    qtbot.addWidget(panel)
    qtbot.addWidget(messages)
    (tmp_path / "clens_config.json").write_text("{not json")
    with qtbot.waitSignal(jobs.error, timeout=60_000) as blocker:
        drop_files(panel, [tmp_path])
    assert "clens_config.json" in blocker.args[0]
    assert session.model is None
    assert messages.tree.topLevelItemCount() == 1


def test_drop_zone_embeds_files_and_reports_bad_ones(qtbot, session_jobs, native_model, media_dir):
    session, jobs = session_jobs
    session.set_model(native_model)
    panel = DropPanel(session, jobs)
    messages = MessagesPanel(session, jobs)
    qtbot.addWidget(panel)
    qtbot.addWidget(messages)
    with qtbot.waitSignal(jobs.job_done, timeout=60_000):
        drop_files(panel.area, [media_dir / "red.png", media_dir / "truncated.png", media_dir / "tone.wav"])
    assert [it.source.rsplit("/", 1)[-1] for it in session.items] == ["red.png", "tone.wav"]
    assert panel.list.count() == 2
    row = messages.tree.topLevelItem(0)
    assert row.text(0) == "truncated.png" and "corrupt" in row.text(2)
    panel.text.setText("a red circle")
    with qtbot.waitSignal(jobs.job_done, timeout=60_000):
        panel.text.returnPressed.emit()
    assert session.items[-1].data == "a red circle" and panel.text.text() == ""
    # list selection is session selection, and back
    panel.list.item(0).setSelected(True)
    assert session.selection == frozenset({0})
    session.select([1, 2])
    assert [panel.list.row(i) for i in panel.list.selectedItems()] == [1, 2]
    # some inputs removed (the Delete key on the list), the rest keep their vectors
    kept_vector = session.vectors[0].copy()
    qtbot.keyClick(panel.list, Qt.Key.Key_Delete)
    assert [it.source.rsplit("/", 1)[-1] for it in session.items] == ["red.png"] and panel.list.count() == 1
    np.testing.assert_array_equal(session.vectors, kept_vector[None, :])
    assert session.selection == frozenset()


def test_drop_without_model_says_what_to_do(qtbot, session_jobs, media_dir):
    session, jobs = session_jobs
    panel = DropPanel(session, jobs)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(jobs.error) as blocker:
        drop_files(panel.area, [media_dir / "red.png"])
    assert "open a model first" in blocker.args[0]


def test_similarity_heatmap_hover_and_click(qtbot, native_model, media_dir):
    session = Session()
    session.set_model(native_model)
    panel = SimilarityPanel(session)
    qtbot.addWidget(panel)
    panel.resize(600, 600)
    panel.show()
    qtbot.waitExposed(panel)
    session.add_result(embed_paths(native_model, [media_dir / "red.png", media_dir / "tone.wav"], ["a dog"]))
    expected = session.similarity()
    np.testing.assert_allclose(panel.image.image, expected)
    # the colour bar and the image share one data-driven range
    assert panel.colorbar.levels() == pytest.approx((float(expected.min()), 1.0))
    assert tuple(panel.image.getLevels()) == pytest.approx((float(expected.min()), 1.0))
    # the centre of cell (row 2, col 0) in scene coordinates
    scene = panel.plot.vb.mapViewToScene(QPointF(0.5, 2.5))
    assert panel.cell_at(scene) == (2, 0)
    panel._mouse_moved(scene)
    assert "a dog" in panel.hover.text() and "red.png" in panel.hover.text()
    assert f"{expected[2, 0]:+.4f}" in panel.hover.text()
    selected = []
    session.selection_changed.connect(selected.append)
    panel._mouse_clicked(type("Click", (), {"scenePos": lambda self: scene})())
    assert selected[-1] == frozenset({0, 2})
    assert len(panel.selection_box.data) == 4


def test_model_change_reembeds_what_was_shown(qtbot, session_jobs, native_model, native_dir, media_dir):
    session, jobs = session_jobs
    session.set_model(native_model)
    session.add_result(embed_paths(native_model, [media_dir / "red.png"], ["a cat"]))
    with qtbot.waitSignal(jobs.job_done, timeout=60_000, check_params_cb=lambda kind: kind == "embed"):
        jobs.open_model(native_dir)
    assert [it.modality.value for it in session.items] == ["image", "text"]
    assert session.model is not native_model and session.vectors.shape == (2, 16)


def test_main_window_layout_round_trip(qtbot, tmp_path):
    from clens_app.qt_main_window import MainWindow

    settings = QSettings(str(tmp_path / "lens.ini"), QSettings.Format.IniFormat)
    first = MainWindow(settings=settings)
    qtbot.addWidget(first)
    first.show()
    first.docks["messages"].hide()
    first.close()
    second = MainWindow(settings=QSettings(str(tmp_path / "lens.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(second)
    second.show()
    assert second.docks["messages"].isHidden() and not second.docks["model"].isHidden()
    second.close()


def test_similarity_matrix_exports_png_and_svg(qtbot, native_model, media_dir, tmp_path):
    session = Session()
    session.set_model(native_model)
    panel = SimilarityPanel(session)
    qtbot.addWidget(panel)
    panel.resize(500, 500)
    session.add_result(embed_paths(native_model, [media_dir / "red.png"], ["a cat", "a dog"]))
    png, svg = panel.export_to(tmp_path / "m.png"), panel.export_to(tmp_path / "m.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:400] and svg.stat().st_size > 1000


def test_model_panel_asks_a_lone_state_dicts_architecture(qtbot, session_jobs, openclip_dir, tmp_path,
                                                           monkeypatch):
    """Dropping weights that do not say their architecture: one question, then the model opens."""
    import json

    from safetensors.torch import load_file, save_file

    from cl_core.models import archs

    session, jobs = session_jobs
    fixture_cfg = json.loads((openclip_dir / "open_clip_config.json").read_text())["model_cfg"]
    monkeypatch.setitem(archs.ARCHS, "ViT-B-16", fixture_cfg)
    st = tmp_path / "finetuned.safetensors"
    save_file(load_file(str(openclip_dir / "open_clip_model.safetensors")), str(st))
    panel = ModelPanel(session, jobs)
    qtbot.addWidget(panel)
    asked = []

    def answer(*args, **kwargs):  # noqa: ANN002, ANN003 - QInputDialog.getItem's signature
        asked.append(args[3])
        return "ViT-B-16", True

    monkeypatch.setattr("clens_app.qt_model_panel.QInputDialog.getItem", answer)
    with qtbot.waitSignal(session.model_changed, timeout=60_000):
        jobs.open_model(st)
    assert asked and "ViT-B-16" in asked[0] and "ViT-B-32-quickgelu" in asked[0]
    assert session.model is not None and session.model.format == "openai_clip"
    assert (tmp_path / "finetuned.json").is_file()
