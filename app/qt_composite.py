"""The channels a channel stack (mIF) is shown in: three pickers (red, green, blue) over the open model's
channel names, starting from a sensible three (e.g. panCK, CD8, DAPI). A change draws the shown stacks
again (cached per choice). Hidden when the model reads no channel stacks."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from cl_core.actions import default_channel_names
from cl_core.modality import Modality
from cl_core.session import Session

from .jobs import Jobs

NONE = "(none)"
COLOURS = ("red", "green", "blue")


class CompositePicker(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("stacks as"))
        self.pickers: list[QComboBox] = []
        for colour in COLOURS:
            box = QComboBox()
            box.setToolTip(f"The channel of a multiplexed stack shown in {colour} in the result pictures")
            box.currentIndexChanged.connect(lambda _i: self._chosen())
            layout.addWidget(box)
            self.pickers.append(box)
        self._filling = False
        session.model_changed.connect(lambda _m: self._fill())
        self._fill()

    def channel_names(self) -> list[str]:
        model = self.session.model
        if model is None or Modality.MULTICHANNEL not in model.modalities:
            return []
        pre = model.info().get("preprocessing", {}).get("multichannel", {})
        return [str(n) for n in pre.get("channels", [])]

    def _fill(self) -> None:
        names = self.channel_names()
        self.setVisible(bool(names))
        self._filling = True
        start = default_channel_names(names) if names else ("", "", "")
        for box, pick in zip(self.pickers, start, strict=True):
            box.clear()
            box.addItems([NONE, *names])
            box.setCurrentText(pick or NONE)
        self._filling = False
        self.jobs.composite = None  # the default three until a person picks

    def chosen(self) -> tuple[str, str, str]:
        names = [("" if b.currentText() == NONE else b.currentText()) for b in self.pickers]
        return names[0], names[1], names[2]

    def _chosen(self) -> None:
        if not self._filling:
            self.jobs.set_composite(self.chosen())
