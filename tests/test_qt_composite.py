"""The channel picker: three quick RGB pickers, and the Colours dialog giving any channel a pseudocolour and
contrast limits (auto or set) — applied as the stacks' look for the results and previews."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from cl_core.readers.thumbnail import ChannelLook  # noqa: E402
from clens_app.qt_composite import AUTO, ChannelLooks, CompositePicker  # noqa: E402


def test_the_colours_dialog_gives_each_channel_a_colour_and_limits(qtbot, controller):
    session, jobs = controller
    picker = CompositePicker(session, jobs)
    qtbot.addWidget(picker)
    assert picker.channel_names() == ["DAPI", "panCK", "CD8"]
    start = picker.current_looks()
    assert [lk.colour for lk in start] == ["red", "green", "blue"] and {lk.name for lk in start} == {"DAPI", "panCK",
                                                                                                     "CD8"}
    dialog = ChannelLooks(picker.channel_names(), start)
    qtbot.addWidget(dialog)
    shown, name, colour, low, high = dialog.rows[1]
    assert name == "panCK" and shown.isChecked() and low.value() == AUTO and low.text() == "auto"
    colour.setCurrentText("cyan")
    high.setValue(800.0)
    dialog.rows[2][0].setChecked(False)  # CD8 hidden
    looks = dialog.looks()
    assert ChannelLook("panCK", "cyan", None, 800.0) in looks and all(lk.name != "CD8" for lk in looks)
    picker.apply_looks(looks)
    assert jobs.composite == tuple(lk.spec() for lk in looks)
    assert picker.current_looks() == looks  # the dialog opens again on what is shown
