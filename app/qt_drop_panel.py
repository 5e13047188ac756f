"""Drop zone: files from the file manager and typed text go to the embedding job; lists what is embedded."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cl_core.modality import Modality
from cl_core.session import Session

from .jobs import Jobs
from .qt_util import local_paths

MODALITY_MARK = {Modality.IMAGE: "▣", Modality.TEXT: "✎", Modality.AUDIO: "♪", Modality.MULTICHANNEL: "▦"}


class DropArea(QFrame):
    """The dashed target; highlights while a drag hovers over it."""

    def __init__(self, on_drop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.on_drop = on_drop
        self.setObjectName("dropArea")
        self.setAcceptDrops(True)
        self.setMinimumHeight(90)
        label = QLabel("<b>Drop an image, a sound or a text file here,</b><br>or type a sentence below"
                       "<br><span style='color:gray'>also CSV, TIFF/OME-TIFF and .npy stacks; a checkpoint folder "
                       "opens as the model</span>")
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        self.setProperty("hover", False)

    def _hover(self, on: bool) -> None:
        self.setProperty("hover", on)
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if local_paths(event.mimeData()) or event.mimeData().hasText():
            event.acceptProposedAction()
            self._hover(True)

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802 - Qt override
        self._hover(False)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self._hover(False)
        mime = event.mimeData()
        paths = local_paths(mime)
        texts = [] if paths or not mime.hasText() else [mime.text()]
        if paths or texts:
            self.on_drop(paths, texts)
            event.acceptProposedAction()


class DropPanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.jobs = jobs
        self.area = DropArea(self.submit)
        self.text = QLineEdit()
        self.text.setPlaceholderText("Type a sentence to compare with the inputs, then Enter")
        self.text.setToolTip("A sentence to embed beside the dropped items (Enter embeds it)")
        self.text.returnPressed.connect(self._submit_text)
        add_text = QPushButton("Embed text")
        add_text.setToolTip("Embed the sentence typed on the left")
        add_text.clicked.connect(self._submit_text)
        add_files = QPushButton("Add files…")
        add_files.setToolTip("Choose images, sounds, texts or stacks to embed (or drop them above)")
        add_files.clicked.connect(self._pick_files)
        self.remove = QPushButton("Remove")
        self.remove.setToolTip("Remove the inputs selected in the list (Delete key does the same)")
        self.remove.clicked.connect(self.remove_selected)
        clear = QPushButton("Clear")
        clear.setToolTip("Remove every embedded input (the gallery stays)")
        clear.clicked.connect(session.clear_items)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.itemSelectionChanged.connect(self._selection_from_list)
        self.list.installEventFilter(self)  # Delete / Backspace on the list remove the selected inputs
        self.count = QLabel("nothing embedded yet")
        row = QHBoxLayout()
        row.addWidget(self.text, 1)
        row.addWidget(add_text)
        buttons = QHBoxLayout()
        buttons.addWidget(add_files)
        buttons.addStretch(1)
        buttons.addWidget(self.remove)
        buttons.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.addWidget(self.area)
        layout.addLayout(row)
        layout.addLayout(buttons)
        layout.addWidget(self.count)
        layout.addWidget(self.list, 1)
        self._syncing = False
        session.items_changed.connect(self._refresh)
        session.selection_changed.connect(self._selection_from_session)

    def submit(self, paths: list[str], texts: list[str]) -> None:
        self.jobs.open_paths(paths, texts)  # a checkpoint dropped here opens as the model

    def _submit_text(self) -> None:
        text = self.text.text().strip()
        if text:
            self.jobs.embed((), [text])
            self.text.clear()

    def _pick_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add files to embed")
        if paths:
            self.jobs.embed(paths)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.list and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) and \
                event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.remove_selected()
            return True
        return super().eventFilter(watched, event)

    def remove_selected(self) -> None:
        self.session.remove_items(self.session.selection)

    def _refresh(self) -> None:
        self._syncing = True
        self.list.clear()
        for i, item in enumerate(self.session.items):
            entry = QListWidgetItem(f"{i:>3}  {MODALITY_MARK.get(item.modality, '?')}  {item.label.rsplit('/', 1)[-1]}")
            entry.setToolTip(f"{item.modality.value}: {item.source}")
            self.list.addItem(entry)
        n = len(self.session.items)
        self.count.setText(f"{n} item(s) embedded" if n else "nothing embedded yet")
        self._syncing = False

    def _selection_from_list(self) -> None:
        if not self._syncing:
            self.session.select(self.list.row(it) for it in self.list.selectedItems())

    def _selection_from_session(self, selection: frozenset[int]) -> None:
        self._syncing = True
        for i in range(self.list.count()):
            self.list.item(i).setSelected(i in selection)
        self._syncing = False
