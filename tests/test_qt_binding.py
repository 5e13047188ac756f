"""The Qt binding itself: PySide6 6.12.0 dropped a reference to True on every Signal.emit, so a window that
had emitted a few thousand signals aborted ("deallocating True or False"). The app excludes that release;
this catches any build with the same fault before a person meets it."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QObject, Signal  # noqa: E402


class Emitter(QObject):
    changed = Signal(object)


def test_emitting_a_signal_leaves_reference_counts_alone(qapp):
    emitter = Emitter()
    got: list[int] = []
    emitter.changed.connect(got.append)
    before = (sys.getrefcount(True), sys.getrefcount(False))
    for i in range(20):
        emitter.changed.emit(i)
    after = (sys.getrefcount(True), sys.getrefcount(False))
    assert got == list(range(20))
    assert all(abs(a - b) <= 2 for a, b in zip(after, before, strict=True)), (before, after)
