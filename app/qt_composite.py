"""How channel stacks (mIF) are shown: three quick pickers (red, green, blue) over the open model's channel
names, starting from a sensible three (e.g. panCK, CD8, DAPI), and *Colours…*: every channel with its own
pseudocolour and contrast limits (auto from percentiles, or set in the file's units), added as light. A change
draws the shown stacks again (cached per choice): results, previews and the explanation overlay. Hidden when the
model reads no channel stacks."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from cl_core.actions import PSEUDOCOLOURS, ChannelLook, default_channel_names
from cl_core.modality import Modality
from cl_core.session import Session

from .jobs import Jobs

NONE = "(none)"
COLOURS = ("red", "green", "blue")
AUTO = -1.0  # a limit spin box at its minimum reads "auto"
LIMIT_MAX = 1e9


def limit_box(value: float | None, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(AUTO, LIMIT_MAX)
    box.setDecimals(1)
    box.setSpecialValueText("auto")
    box.setValue(AUTO if value is None else value)
    box.setToolTip(tip)
    return box


class ChannelLooks(QDialog):
    """One row per channel: shown, colour, low and high contrast limits (auto: the 1st and 99.5th percentile
    of the channel in each picture)."""

    def __init__(self, names: list[str], looks: list[ChannelLook], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Channel colours and contrast")
        by_name = {lk.name: lk for lk in looks}
        self.table = QTableWidget(len(names), 5)
        self.table.setHorizontalHeaderLabels(["shown", "channel", "colour", "low", "high"])
        self.rows: list[tuple[QCheckBox, str, QComboBox, QDoubleSpinBox, QDoubleSpinBox]] = []
        for r, name in enumerate(names):
            look = by_name.get(name)
            shown = QCheckBox()
            shown.setChecked(look is not None)
            colour = QComboBox()
            colour.addItems(list(PSEUDOCOLOURS))
            colour.setCurrentText(look.colour if look and look.colour in PSEUDOCOLOURS else
                                  list(PSEUDOCOLOURS)[r % len(PSEUDOCOLOURS)])
            low = limit_box(look.low if look else None, f"{name}: the intensity shown black (auto: 1st percentile)")
            high = limit_box(look.high if look else None, f"{name}: the intensity shown full (auto: 99.5th percentile)")
            self.table.setCellWidget(r, 0, shown)
            self.table.setCellWidget(r, 1, QLabel(name))
            self.table.setCellWidget(r, 2, colour)
            self.table.setCellWidget(r, 3, low)
            self.table.setCellWidget(r, 4, high)
            self.rows.append((shown, name, colour, low, high))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.setMinimumWidth(self.table.horizontalHeader().length() + 80)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Channels are added as coloured light; limits are in the file's own units."))
        layout.addWidget(self.table)
        layout.addWidget(buttons)

    def looks(self) -> list[ChannelLook]:
        out = []
        for shown, name, colour, low, high in self.rows:
            if shown.isChecked():
                lo = None if low.value() <= AUTO else low.value()
                hi = None if high.value() <= AUTO else high.value()
                out.append(ChannelLook(name, colour.currentText(), lo, hi))
        return out


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
        self.more = QPushButton("Colours…")
        self.more.setToolTip("Any channels, each in its own colour with its own contrast limits")
        self.more.clicked.connect(self.edit_looks)
        layout.addWidget(self.more)
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

    def current_looks(self) -> list[ChannelLook]:
        """What is shown now, as looks (the three pickers as red, green and blue when no colours were set)."""
        current = self.jobs.composite or self.chosen()
        return [lk for lk in (ChannelLook.parse(c, i) for i, c in enumerate(current)) if lk.name]

    def edit_looks(self) -> None:
        dialog = ChannelLooks(self.channel_names(), self.current_looks(), self)
        if dialog.exec():
            self.apply_looks(dialog.looks())

    def apply_looks(self, looks: list[ChannelLook]) -> None:
        self.jobs.set_composite(tuple(lk.spec() for lk in looks))
