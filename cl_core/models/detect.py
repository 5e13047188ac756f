"""Which checkpoint format a path holds, decided from its files, before anything is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from cl_core.errors import CheckpointError
from cl_core.formats import CONFIG_FILES, PICKLE_SUFFIXES, SAFETENSORS_SUFFIX, WEIGHT_SUFFIXES
from cl_core.models.safety import validate_safetensors


@dataclass(frozen=True)
class Detected:
    format: str  # native | open_clip | huggingface | sentence_transformers | openai_clip
    path: Path


def detect_format(path: str | Path) -> Detected:
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointError(f"{p}: no such file or folder")
    if p.is_file() and p.name in CONFIG_FILES:
        p = p.parent
    if p.is_dir():
        if (p / "modules.json").is_file() and (p / "config.json").is_file():  # before config.json means HF
            return Detected("sentence_transformers", p)
        for name, fmt in CONFIG_FILES.items():
            if (p / name).is_file():
                return Detected(fmt, p)
        weights = sorted(x.name for x in p.iterdir() if x.suffix in WEIGHT_SUFFIXES)
        if len(weights) == 1:
            return detect_format(p / weights[0])
        raise CheckpointError(f"{p}: no checkpoint config found (expected one of {', '.join(CONFIG_FILES)})"
                              + (f"; weights present: {', '.join(weights)}" if weights else ""))
    if p.suffix == SAFETENSORS_SUFFIX:
        validate_safetensors(p)
        with safe_open(str(p), framework="pt") as fh:
            keys = set(fh.keys())
        from cl_core.models.openclip import looks_like_openai_state_dict

        if looks_like_openai_state_dict(keys):
            return Detected("openai_clip", p)
        raise CheckpointError(f"{p}: a lone safetensors file that is not an OpenAI/open_clip CLIP state dict; "
                              "open its folder (with its config) instead")
    if p.suffix in PICKLE_SUFFIXES:  # a state dict, or a TorchScript archive whose tensors are read without its code
        return Detected("openai_clip", p)
    raise CheckpointError(f"{p}: not a checkpoint Contrastive Lens knows (native folder, Hugging Face folder, "
                          "open_clip folder, or a CLIP state dict file)")


def looks_like_checkpoint(path: str | Path) -> bool:
    """Cheap check (no file contents read) to route a drop: model to open, or inputs to embed."""
    p = Path(path)
    if p.is_dir():
        return any((p / name).is_file() for name in CONFIG_FILES)
    return p.suffix in (SAFETENSORS_SUFFIX, ".pt", ".pth", ".ckpt") or p.name in CONFIG_FILES
