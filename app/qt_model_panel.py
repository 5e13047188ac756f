"""Model panel: open a checkpoint (dialog or drop) and show what `clens info` shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cl_core.actions import ARCH_NAMES, DEVICE_CHOICES
from cl_core.session import Session

from .jobs import Jobs

if TYPE_CHECKING:
    from cl_core.models.base import BaseModel
from .qt_util import local_paths


class ModelPanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.jobs = jobs
        self.setAcceptDrops(True)
        self.title = QLabel("No model open. Drop a checkpoint folder here, or open one.")
        self.title.setObjectName("modelTitle")
        self.title.setWordWrap(True)
        open_dir = QPushButton("Open folder…")
        open_dir.setToolTip("A native, Hugging Face or open_clip checkpoint folder")
        open_dir.clicked.connect(self.open_folder)
        open_file = QPushButton("Open file…")
        open_file.setToolTip("A CLIP state dict (.safetensors, or .pt/.bin with pickle allowed)")
        open_file.clicked.connect(self._open_file)
        self.device = QComboBox()
        self.device.addItems(list(DEVICE_CHOICES))
        self.device.setToolTip("auto: CUDA, then Apple MPS, then CPU")
        self.device.setCurrentText(jobs.settings.device)
        self.device.currentTextChanged.connect(lambda text: setattr(jobs.settings, "device", text))
        self.allow_pickle = QCheckBox("Allow pickle weights")
        self.allow_pickle.setToolTip("Open .bin/.pt weights where no safetensors exist.\n"
                                     "They are loaded weights-only: code inside them never runs.")
        self.allow_pickle.setChecked(jobs.settings.allow_pickle)
        self.allow_pickle.toggled.connect(lambda on: setattr(jobs.settings, "allow_pickle", on))
        jobs.settings.events.device.connect(lambda text: self.device.setCurrentText(text))
        jobs.settings.events.allow_pickle.connect(lambda on: self.allow_pickle.setChecked(on))
        self.hub = QLineEdit()
        self.hub.setPlaceholderText("or a hub id, e.g. openai/clip-vit-base-patch32, then Enter")
        self.hub.setToolTip("A model on the Hugging Face hub (org/name): configs, tokenizer and weights are fetched "
                            "into your Hugging Face cache (never code); offline, the cache is used")
        self.hub.returnPressed.connect(self.open_hub)
        buttons = QHBoxLayout()
        buttons.addWidget(open_dir)
        buttons.addWidget(open_file)
        options = QHBoxLayout()
        options.addWidget(QLabel("Device"))
        options.addWidget(self.device)
        options.addStretch(1)
        options.addWidget(self.allow_pickle)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Property", "Value"])
        self.tree.setColumnWidth(0, 130)
        self.tree.setAlternatingRowColors(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(buttons)
        layout.addWidget(self.hub)
        layout.addLayout(options)
        layout.addWidget(self.tree, 1)
        session.model_changed.connect(self._show_model)
        jobs.arch_needed.connect(self.ask_arch)

    def ask_arch(self, path: str, then_embed: list) -> None:
        """A lone CLIP state dict does not say its architecture: ask once (the answer is kept beside it)."""
        name, ok = QInputDialog.getItem(
            self, "Which CLIP architecture?",
            f"{Path(path).name} holds CLIP weights but does not say how they were built.\n"
            "Pick the architecture it was trained as (its model page or training script names it);\n"
            "“-quickgelu” is for weights trained as OpenAI's. The choice is saved beside the file.",
            list(ARCH_NAMES), ARCH_NAMES.index("ViT-B-32"), False)
        if ok and name:
            self.jobs.open_model(path, then_embed, arch=name)

    def open_hub(self) -> None:
        text = self.hub.text().strip()
        if text:
            self.jobs.open_model(text)

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open checkpoint folder")
        if folder:
            self.jobs.open_model(folder)

    def _open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint file", "",
                                              "Checkpoints (*.safetensors *.pt *.pth *.bin);;All files (*)")
        if path:
            self.jobs.open_model(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = local_paths(event.mimeData())
        if paths:
            self.jobs.open_model(paths[0])
            event.acceptProposedAction()

    def _show_model(self, model: BaseModel | None) -> None:
        self.tree.clear()
        if model is None:
            self.title.setText("No model open.")
            return
        info = model.info()
        self.title.setText(f"<b>{info['name']}</b> &nbsp; <span style='color:gray'>{info['format']}</span>")
        rows = [("modalities", ", ".join(info["modalities"])), ("embedding dim", str(info["embed_dim"])),
                ("parameters", f"{info['parameters']:,}"), ("device", info["device"]),
                ("logit scale", str(info["logit_scale"]))]
        if info["logit_bias"] is not None:
            rows.append(("logit bias", str(info["logit_bias"])))
        rows.append(("source", str(Path(info["source"]))))
        for key, value in rows:
            QTreeWidgetItem(self.tree, [key, value]).setToolTip(1, value)
        pre = QTreeWidgetItem(self.tree, ["preprocessing", ""])
        for modality, spec in info["preprocessing"].items():
            node = QTreeWidgetItem(pre, [modality, ""])
            for k, v in (spec or {}).items():
                text = v if isinstance(v, str) else json.dumps(v, default=str)
                QTreeWidgetItem(node, [str(k), text]).setToolTip(1, text)
        pre.setExpanded(True)
        self.tree.resizeColumnToContents(0)
        self.tree.setColumnWidth(0, max(self.tree.columnWidth(0), 130))
