"""Open any supported checkpoint as a model adapter: the one entry point the CLI and the GUI use."""

from __future__ import annotations

from pathlib import Path

from cl_core.models.base import BaseModel
from cl_core.models.detect import detect_format
from cl_core.models.device import pick_device
from cl_core.models.hub import hub_id, resolve
from cl_core.task import TaskState


def open_checkpoint(path: str | Path, device: str | None = None, allow_pickle: bool = False,
                    state: TaskState | None = None, arch: str | None = None) -> BaseModel:
    """Detect the format, load weights safely, move to the chosen device.

    allow_pickle: permit .bin/.pt weights where no safetensors exist (still weights_only=True).
    arch: the open_clip architecture of a lone state dict (which its keys cannot tell).
    """
    dev = pick_device(device)
    if hub_id(path) is not None:  # org/name or hf-hub:org/name: the cached (or fetched) folder
        if state is not None:
            state.set_progress(0, 0, f"fetching {path} from the Hugging Face hub")
        path = resolve(path, allow_pickle, state)
    found = detect_format(path)
    if state is not None:
        state.set_progress(0, 2, f"loading {found.format} checkpoint")
    if found.format == "native":
        from cl_core.models.native import load_native

        model: BaseModel = load_native(found.path, dev)
    elif found.format == "open_clip":
        from cl_core.models.openclip import load_openclip_folder

        model = load_openclip_folder(found.path, dev, allow_pickle)
    elif found.format == "sentence_transformers":
        from cl_core.models.sentence import load_sentence_folder

        model = load_sentence_folder(found.path, dev)
    elif found.format == "huggingface":
        from cl_core.models.hf import load_hf_folder

        model = load_hf_folder(found.path, dev, allow_pickle)
    else:
        from cl_core.models.openclip import load_openai_file

        model = load_openai_file(found.path, dev, allow_pickle, arch)
    if state is not None:
        state.set_progress(2, 2, "model ready")
    return model
