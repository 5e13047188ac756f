"""Device choice (CUDA, then MPS, then CPU, or forced) and out-of-memory backoff for batched work."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

from cl_core.choices import DEVICE_CHOICES
from cl_core.errors import ClensError

T = TypeVar("T")
R = TypeVar("R")


def pick_device(preference: str | None = None) -> torch.device:
    """Resolve 'auto' (or $CLENS_DEVICE) to the best available device; a forced one must exist."""
    pref = (preference or os.environ.get("CLENS_DEVICE") or "auto").lower()
    if pref not in DEVICE_CHOICES and not pref.startswith("cuda:"):
        raise ClensError(f"unknown device {pref!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise ClensError("device 'cuda' was asked for, but no CUDA GPU is available")
    if pref == "mps" and not mps_ok:
        raise ClensError("device 'mps' was asked for, but Apple MPS is not available")
    return torch.device(pref)


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_cached(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def run_batched(items: Sequence[T], batch_size: int, fn: Callable[[Sequence[T]], list[R]],
                device: torch.device, between: Callable[[int], None] | None = None) -> list[R]:
    """Apply fn to consecutive batches; on out-of-memory halve the batch and retry (down to one item).

    `between(done)` runs after each finished batch (progress, cancellation). Results keep input order.
    """
    out: list[R] = []
    size = max(1, batch_size)
    start = 0
    while start < len(items):
        chunk = items[start:start + size]
        try:
            out.extend(fn(chunk))
        except Exception as exc:
            if not is_oom(exc) or size == 1:
                raise
            free_cached(device)
            size = max(1, size // 2)
            continue
        start += len(chunk)
        if between is not None:
            between(start)
    return out
