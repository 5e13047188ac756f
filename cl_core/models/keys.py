"""Compare a checkpoint's tensors with what a model expects, and say exactly what does not fit."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def key_mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor],
                 ignore_unexpected: tuple[str, ...] = ()) -> str | None:
    """None when the keys and shapes match; else 'missing keys: ... | unexpected keys: ... | wrong shapes: ...'."""
    missing = sorted(k for k in expected if k not in given)
    unexpected = sorted(k for k in given if k not in expected and k not in ignore_unexpected)
    shapes = [f"{k} {tuple(given[k].shape)} (model expects {tuple(expected[k].shape)})"
              for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]
    parts = []
    if missing:
        parts.append("missing keys: " + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
    if unexpected:
        parts.append("unexpected keys: " + ", ".join(unexpected[:10]) + (" ..." if len(unexpected) > 10 else ""))
    if shapes:
        parts.append("wrong shapes: " + "; ".join(shapes[:6]) + (" ..." if len(shapes) > 6 else ""))
    return " | ".join(parts) or None
