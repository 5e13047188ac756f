"""The window's controller and what it shows: a demo gallery brings its own model, a missing tower is one
message, the title names what is open, the Jobs panel cancels one job, the drop zone opens a model."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings  # noqa: E402
from qt_helpers import drop_files, wait_idle  # noqa: E402

from cl_core.session import Session  # noqa: E402
from cl_core.task import TaskState  # noqa: E402
from clens_app.jobs import Jobs  # noqa: E402
from clens_app.qt_drop_panel import DropPanel  # noqa: E402
from clens_app.qt_jobs_panel import JobsPanel  # noqa: E402
from clens_app.qt_main_window import MainWindow  # noqa: E402
from media import make_gallery  # noqa: E402


@pytest.fixture
def controller(qtbot, tmp_path):
    session = Session()
    jobs = Jobs(session)
    jobs.settings.cache_dir = tmp_path / "cache"
    yield session, jobs
    assert jobs.shutdown()


def test_a_tower_the_model_lacks_is_one_message(qtbot, controller, hf_clip, tmp_path):
    session, jobs = controller
    reported = []
    session.failures_added.connect(reported.extend)
    with qtbot.waitSignal(jobs.job_done, timeout=60_000):
        jobs.open_model(hf_clip[0])  # image and text towers, no audio
    jobs.open_gallery(make_gallery(tmp_path / "g", n=7) / "manifest.csv")
    wait_idle(qtbot, jobs)
    assert session.index is not None and {r.modality.value for r in session.gallery.rows} == {"image", "text"}
    assert len(reported) == 1
    assert reported[0].source.startswith("7 items") and "no audio tower" in reported[0].reason


def test_a_demo_gallery_opens_with_its_own_model(qtbot, controller, native_model):
    session, jobs = controller
    session.set_model(native_model)
    jobs.open_gallery("demo:shapes_sounds")
    wait_idle(qtbot, jobs, timeout=240_000)
    assert session.model is not None and session.model.name == "shapes-and-sounds"
    assert session.gallery_source == "demo:shapes_sounds" and session.index is not None
    assert not session.gallery.failures


def test_drop_zone_opens_a_dropped_model_folder(qtbot, controller, native_dir):
    session, jobs = controller
    panel = DropPanel(session, jobs)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(jobs.job_done, timeout=60_000, check_params_cb=lambda kind: kind == "model"):
        drop_files(panel.area, [native_dir])
    assert session.model is not None and session.items == []  # opened, not embedded as text files


def test_window_title_names_the_model_and_the_gallery(qtbot, tmp_path, native_dir):
    window = MainWindow(settings=QSettings(str(tmp_path / "lens.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.jobs.settings.cache_dir = tmp_path / "cache"
    assert window.windowTitle() == "Contrastive Lens"
    window.route_paths([str(native_dir)])
    wait_idle(qtbot, window.jobs)
    assert window.windowTitle() == "Contrastive Lens — tiny-native"
    window.jobs.open_gallery(make_gallery(tmp_path / "g", n=4))
    wait_idle(qtbot, window.jobs)
    assert window.windowTitle() == "Contrastive Lens — tiny-native — gallery g (12 items)"
    window.close()


def test_jobs_panel_lists_jobs_and_cancels_one(qtbot, controller):
    session, jobs = controller
    panel = JobsPanel(session, jobs)
    qtbot.addWidget(panel)
    release = threading.Event()

    def held(state: TaskState) -> str:
        while not release.wait(0.01):
            state.check_cancelled()
        return "ok"

    a = jobs._start("embed", "first", held, lambda r: None)
    b = jobs._start("gallery", "second", held, lambda r: None)
    assert [r.job.name for r in panel.rows.values()] == ["first", "second"] and "2 job(s)" in panel.summary.text()
    with qtbot.waitSignal(a.signals.done, timeout=30_000):
        panel.rows[a.id].cancel.click()
    assert a.cancelled and not b.cancelled
    assert [r.job.name for r in panel.rows.values()] == ["second"]
    release.set()
    wait_idle(qtbot, jobs)
    assert panel.rows == {} and panel.summary.text() == "No job running."


def test_view_menu_resets_the_layout_enlarges_text_and_focuses_search(qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication

    window = MainWindow(settings=QSettings(str(tmp_path / "lens.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    window.docks["model"].hide()
    window.reset_layout()
    assert not window.docks["model"].isHidden()
    size = QApplication.font().pointSizeF()
    window.large_text.setChecked(True)
    assert QApplication.font().pointSizeF() == pytest.approx(size * 1.5)
    window.large_text.setChecked(False)
    assert QApplication.font().pointSizeF() == pytest.approx(size)
    window.focus_search()
    assert not window.docks["search"].isHidden()
    window.close()
