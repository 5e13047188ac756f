"""Jobs: every running job with its kind, progress, time left and its own Cancel (what it finished is kept)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from cl_core.session import Session

from .jobs import Jobs
from .qt_worker import Job


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.0f} s left"
    return f"{seconds / 60:.0f} min left"


class JobRow(QWidget):
    """One job: name and kind, a progress bar, the time left, and Cancel."""

    def __init__(self, job: Job, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self.title = QLabel(f"<b>{job.name}</b> <span style='color:gray'>({job.kind})</span>")
        self.title.setMinimumWidth(180)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.bar.setTextVisible(True)
        self.eta = QLabel("")
        self.eta.setMinimumWidth(80)
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip(f"Cancel '{job.name}' only; what it finished is kept")
        self.cancel.clicked.connect(lambda: jobs.cancel(job.id))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        for w, stretch in ((self.title, 0), (self.bar, 1), (self.eta, 0), (self.cancel, 0)):
            layout.addWidget(w, stretch)

    def show_progress(self) -> None:
        p = self.job.progress
        if p.total > 0:
            self.bar.setRange(0, p.total)
            self.bar.setValue(p.done)
        self.bar.setFormat(f"{p.text} %v/%m" if p.total else p.text)
        self.eta.setText(eta_text(self.job.eta_s()))
        if self.job.cancelled:
            self.cancel.setEnabled(False)
            self.cancel.setText("Cancelling")


class JobsPanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.summary = QLabel("No job running.")
        cancel_all = QPushButton("Cancel all")
        cancel_all.setToolTip("Cancel every running job; finished work is kept")
        cancel_all.clicked.connect(jobs.cancel_all)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(cancel_all)
        self.list = QWidget()
        self.list_layout = QVBoxLayout(self.list)
        self.list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.list)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        self.rows: dict[int, JobRow] = {}
        jobs.runner.jobs_changed.connect(self.refresh)
        jobs.runner.progress.connect(self._progress)
        self.refresh()

    def refresh(self) -> None:
        active = {job.id: job for job in self.jobs.runner.active}
        for job_id in [i for i in self.rows if i not in active]:
            row = self.rows.pop(job_id)
            self.list_layout.removeWidget(row)
            row.hide()
            row.deleteLater()
        for job in active.values():
            if job.id not in self.rows:
                row = JobRow(job, self.jobs)
                self.list_layout.insertWidget(self.list_layout.count() - 1, row)
                self.rows[job.id] = row
        n = len(active)
        self.summary.setText(f"{n} job(s) running." if n else "No job running.")

    def _progress(self, payload: tuple[Job, object]) -> None:
        row = self.rows.get(payload[0].id)
        if row is not None:
            row.show_progress()
