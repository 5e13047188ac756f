"""The whole window: drops routed to model or inputs, and closing mid-job never crashes or leaks."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings  # noqa: E402
from qt_helpers import drop_files, wait_idle  # noqa: E402

from clens_app.qt_main_window import MainWindow  # noqa: E402


def make_window(qtbot, tmp_path) -> MainWindow:
    window = MainWindow(settings=QSettings(str(tmp_path / "lens.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    return window


def test_drop_model_and_files_on_window(qtbot, tmp_path, native_dir, media_dir):
    window = make_window(qtbot, tmp_path)
    drop_files(window, [native_dir, media_dir / "red.png", media_dir / "fake.eps"])
    qtbot.waitUntil(lambda: len(window.session.items) == 1 and not window.jobs.busy, timeout=60_000)
    assert window.session.model is not None
    assert window.panels["similarity"].image.image.shape == (1, 1)
    assert window.panels["messages"].tree.topLevelItemCount() == 1
    assert "embedded 1 item" in window.status_label.text()
    window.close()


def test_cancel_keeps_finished_work(qtbot, tmp_path, native_model, monkeypatch):
    """The job is held after its third batch until the user's Cancel arrives: what it finished stays."""
    import threading

    from cl_core.embed import items as items_mod

    window = make_window(qtbot, tmp_path)
    window.session.set_model(native_model)
    cancelled = threading.Event()
    real, calls = items_mod.encode_chunk, []

    def held(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            assert cancelled.wait(30)  # the Cancel below releases it; the job stops before the next batch
        return real(*args, **kwargs)

    monkeypatch.setattr(items_mod, "encode_chunk", held)
    job = window.jobs.embed((), [f"caption {i}" for i in range(400)])
    assert job is not None
    qtbot.waitUntil(lambda: len(calls) >= 4, timeout=30_000)
    window.cancel_button.click()  # the status bar's Cancel: the job shown
    assert job.cancelled
    cancelled.set()
    wait_idle(qtbot, window.jobs)
    n = len(window.session.items)
    assert n == 4 * native_model.batch_sizes.get(items_mod.Modality.TEXT, 32)
    assert window.session.vectors.shape == (n, 16)
    window.close()


@pytest.mark.parametrize("round_", range(8))
def test_close_window_mid_job(qtbot, tmp_path, native_dir, media_dir, round_):
    """Close while a model loads / while embedding runs: no crash, no thread left, no late signal."""
    window = make_window(qtbot, tmp_path)
    if round_ % 2:
        window.jobs.open_model(native_dir, then_embed=[media_dir])
    else:
        from cl_core.models.open import open_checkpoint

        window.session.set_model(open_checkpoint(native_dir))
        window.jobs.embed([media_dir], [f"t{i}" for i in range(200)])
    assert window.jobs.busy
    window.close()
    assert not window.jobs.busy
    assert window.jobs.runner.pool.activeThreadCount() == 0


def test_app_opens_on_the_bundled_demo(qtbot, tmp_path, monkeypatch):
    from cl_core.demo.galleries import DEMO_MODEL

    if not (DEMO_MODEL / "clens_config.json").is_file():
        pytest.skip("demo model not trained yet")
    monkeypatch.setenv("CLENS_CACHE_DIR", str(tmp_path / "cache"))
    window = make_window(qtbot, tmp_path)
    window.jobs.open_demo()
    qtbot.waitUntil(lambda: len(window.session.items) == 24 and not window.jobs.busy, timeout=120_000)
    kinds = [it.modality.value for it in window.session.items]
    assert kinds == ["image"] * 8 + ["audio"] * 8 + ["text"] * 8
    assert window.session.model.name == "shapes-and-sounds"
    window.close()


def test_dark_theme_recolours_panels_and_plots_and_is_remembered(qtbot, tmp_path):
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    window = make_window(qtbot, tmp_path)
    window.set_theme("light")
    light = QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness()
    window.dark_theme.setChecked(True)  # View → Dark theme
    app_palette = QApplication.instance().palette()
    assert app_palette.color(QPalette.ColorRole.Window).lightness() < 60 < light
    assert app_palette.color(QPalette.ColorRole.Text).lightness() > 180
    plots = [p.panels[k] for p in (window,) for k in ("projection", "similarity")]
    assert plots[0].plot.backgroundBrush().color().lightness() < 60
    assert plots[1].view.backgroundBrush().color().lightness() < 60
    assert window.settings.value("view/theme") == "dark"
    again = MainWindow(settings=window.settings)
    qtbot.addWidget(again)
    assert again.saved_theme() == "dark"
    window.set_theme("light")
    assert not window.dark_theme.isChecked()
    assert plots[0].plot.backgroundBrush().color().lightness() > 200


def test_every_control_says_what_it_does(qtbot, tmp_path):
    """A tooltip on every button, box and field of every panel (a person who does not program can hover
    anything and learn what it does)."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QAbstractSpinBox,
        QComboBox,
        QLineEdit,
        QSlider,
        QTabBar,
    )

    window = make_window(qtbot, tmp_path)
    silent = []
    for key, panel in window.panels.items():
        controls = [w for kind in (QAbstractButton, QComboBox, QLineEdit, QAbstractSpinBox, QSlider)
                    for w in panel.findChildren(kind)]
        for w in controls:
            if isinstance(w.parent(), (QComboBox, QAbstractSpinBox, QTabBar, QAbstractItemView)):
                continue  # the inner parts of a compound control (a table's corner button) share its tooltip
            if not w.toolTip().strip():
                silent.append(f"{key}: {type(w).__name__} {getattr(w, 'text', lambda: '')()!r}")
    assert not silent, silent
