"""The model protocol and the shared machinery every adapter reuses.

Adapters only say how to prepare a batch (the preprocessing that travels with their weights) and how to
run a tower. Batching, device placement, autocast on GPU, fp32 normalisation, window pooling for long
audio, dimension checks and out-of-memory backoff live here once.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from cl_core.errors import DimensionMismatchError, ModalityError
from cl_core.modality import Item, Modality
from cl_core.models.device import run_batched
from cl_core.task import TaskState

MAX_LOGIT_SCALE = 100.0


@dataclass
class Prepared:
    """A model-ready batch. groups[i] = how many rows (e.g. audio windows) belong to item i."""

    inputs: dict[str, torch.Tensor]
    groups: list[int] | None = None

    @property
    def rows(self) -> int:
        return int(next(iter(self.inputs.values())).shape[0])

    @staticmethod
    def concat(parts: list[Prepared]) -> Prepared:
        """One batch from per-item preparations (fixed-shape inputs, as every ItemPreparer makes)."""
        inputs = {k: torch.cat([p.inputs[k] for p in parts]) for k in parts[0].inputs}
        if all(p.groups is None for p in parts):
            return Prepared(inputs)
        return Prepared(inputs, [g for p in parts for g in (p.groups if p.groups is not None else [p.rows])])


class ItemPreparer(Protocol):
    """Picklable preprocessing of one item, free of weights, so decoder worker processes can run it
    and the main process only batches and runs the model."""

    def __call__(self, item: Item) -> Prepared: ...


@dataclass
class BaseModel(ABC):
    """Base adapter: subclasses set the fields and implement prepare/forward/torch_modules."""

    name: str
    format: str
    source: Path
    modalities: tuple[Modality, ...]
    embed_dim: int
    device: torch.device
    logit_scale: float = 1.0 / 0.07
    logit_bias: float | None = None
    objective: str | None = None  # the training objective, where the checkpoint records it (native: its config)
    batch_sizes: dict[Modality, int] = field(default_factory=dict)
    use_autocast: bool = True

    @abstractmethod
    def prepare(self, modality: Modality, items: list[Item]) -> Prepared:
        """CPU preprocessing for one batch of decoded items (resize, tokenise, resample...)."""

    @abstractmethod
    def forward(self, modality: Modality, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Unnormalised [rows, D] features for a prepared batch already on the device."""

    @abstractmethod
    def torch_modules(self) -> list[torch.nn.Module]:
        """Every module holding weights (for device moves and parameter counts)."""

    def preprocessing(self) -> dict[str, Any]:
        """Per-modality preprocessing description (shown by `clens info`)."""
        return {}

    def item_preparer(self, modality: Modality) -> ItemPreparer | None:
        """Per-item preprocessing that may run in a worker process; None: `prepare` runs per batch here
        (text, whose padding depends on the batch)."""
        return None

    # ---- shared machinery -------------------------------------------------------------------

    def to(self, device: torch.device) -> BaseModel:
        for m in self.torch_modules():
            m.to(device)
        self.device = device
        return self

    def parameter_count(self) -> int:
        seen: set[int] = set()
        total = 0
        for m in self.torch_modules():
            for p in m.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
        return total

    def capped_logit_scale(self) -> float:
        value = float(self.logit_scale)
        return MAX_LOGIT_SCALE if not math.isfinite(value) else min(value, MAX_LOGIT_SCALE)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.use_autocast and self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    def _encode_batch(self, modality: Modality, items: list[Item]) -> list[np.ndarray]:
        return self._encode_prepared(modality, self.prepare(modality, items))

    def _encode_prepared(self, modality: Modality, prepared: Prepared) -> list[np.ndarray]:
        inputs = {k: v.to(self.device) for k, v in prepared.inputs.items()}
        with torch.inference_mode(), self._autocast():
            feats = self.forward(modality, inputs)
        feats = feats.float()
        if feats.ndim != 2:
            raise DimensionMismatchError(f"the {modality.value} tower (shape {tuple(feats.shape)})", -1,
                                         "the model config", self.embed_dim)
        if feats.shape[1] != self.embed_dim:
            raise DimensionMismatchError(f"the {modality.value} tower", int(feats.shape[1]),
                                         "the model's shared space", self.embed_dim)
        if prepared.groups is not None:
            # long inputs split into windows: average the normalised windows, deterministic for any batch
            windows = F.normalize(feats, dim=-1)
            pooled, start = [], 0
            for n in prepared.groups:
                pooled.append(windows[start:start + n].mean(dim=0))
                start += n
            feats = torch.stack(pooled)
        out = F.normalize(feats, dim=-1).cpu().numpy().astype(np.float32, copy=False)
        return list(out)

    def _check_modality(self, modality: Modality) -> None:
        if modality not in self.modalities:
            have = ", ".join(m.value for m in self.modalities)
            raise ModalityError(f"model '{self.name}' has no {modality.value} tower (it embeds: {have})")

    def encode(self, modality: Modality, items: list[Item], batch_size: int | None = None,
               state: TaskState | None = None) -> np.ndarray:
        """L2-normalised float32 [N, D] embeddings, in input order; batch halves on GPU out-of-memory."""
        self._check_modality(modality)
        if not items:
            return np.zeros((0, self.embed_dim), np.float32)
        size = batch_size or self.batch_sizes.get(modality, 32)

        def between(done: int) -> None:
            if state is not None:
                state.check_cancelled()

        rows = run_batched(items, size, lambda chunk: self._encode_batch(modality, list(chunk)), self.device, between)
        return np.stack(rows).astype(np.float32, copy=False)

    def encode_prepared(self, modality: Modality, parts: list[Prepared], batch_size: int | None = None) -> np.ndarray:
        """As `encode`, for items already prepared one by one (by `item_preparer`, e.g. in a decoder worker)."""
        self._check_modality(modality)
        if not parts:
            return np.zeros((0, self.embed_dim), np.float32)
        size = batch_size or self.batch_sizes.get(modality, 32)
        rows = run_batched(parts, size, lambda chunk: self._encode_prepared(modality, Prepared.concat(list(chunk))),
                           self.device)
        return np.stack(rows).astype(np.float32, copy=False)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "source": str(self.source),
            "modalities": [m.value for m in self.modalities],
            "embed_dim": self.embed_dim,
            "logit_scale": round(self.capped_logit_scale(), 4),
            "logit_bias": None if self.logit_bias is None else round(float(self.logit_bias), 4),
            "parameters": self.parameter_count(),
            "device": str(self.device),
            "preprocessing": self.preprocessing(),
        }
