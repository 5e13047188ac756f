"""Messages: every file that could not be used, with its reason; job errors too. Never modal."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cl_core.errors import Failure
from cl_core.session import Session

from .jobs import Jobs

STAGE_TEXT = {"read": "could not be read", "encode": "could not be embedded", "quarantine": "quarantined",
              "job": "job failed", "skipped": "skipped", "note": "note (not a problem)"}


class MessagesPanel(QWidget):
    attention = Signal()  # new problems arrived: the window raises this panel

    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["File", "Problem", "Reason"])
        self.tree.setColumnWidth(0, 220)
        self.tree.setColumnWidth(1, 140)
        self.summary = QLabel("No problems.")
        clear = QPushButton("Clear")
        clear.setToolTip("Empty the list of problems (the files themselves are untouched)")
        clear.clicked.connect(self._clear)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        session.failures_added.connect(self.add_failures)
        jobs.error.connect(lambda msg: self.add_failures([Failure("—", msg, "job")]))

    def add_failures(self, failures: list[Failure]) -> None:
        for f in failures:
            row = QTreeWidgetItem(self.tree, [f.source.rsplit("/", 1)[-1], STAGE_TEXT.get(f.stage, f.stage), f.reason])
            row.setToolTip(0, f.source)
            row.setToolTip(2, f.reason)
        self.tree.scrollToBottom()
        self.summary.setText(f"{self.tree.topLevelItemCount()} message(s); the rest of each job went on.")
        self.attention.emit()

    def _clear(self) -> None:
        self.tree.clear()
        self.summary.setText("No problems.")
