"""Open a checkpoint: the model adapter, what `clens info` shows, and its fingerprint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cl_core.embed.cache import EmbeddingCache
from cl_core.models.base import BaseModel
from cl_core.models.fingerprint import fingerprint_of
from cl_core.models.open import open_checkpoint
from cl_core.task import TaskState


@dataclass
class ModelOpened:
    model: BaseModel
    fingerprint: str  # what its vectors depend on: results computed for another fingerprint are stale
    info: dict[str, Any]


def open_model(path: str | Path, device: str | None = None, allow_pickle: bool = False,
               cache: EmbeddingCache | None = None, state: TaskState | None = None,
               arch: str | None = None) -> ModelOpened:
    """Detect the format, load the weights safely, hash them once (memoised per file in the cache).
    `arch`: a lone state dict's open_clip architecture name (ArchitectureNeeded is raised without one)."""
    model = open_checkpoint(path, device=device, allow_pickle=allow_pickle, state=state, arch=arch)
    if state is not None:
        state.set_progress(0, 0, "hashing the weights")
    fingerprint = fingerprint_of(model, cache.file_digest if cache is not None else None)
    return ModelOpened(model, fingerprint, {**model.info(), "fingerprint": fingerprint})
