"""Pieces the timm towers written here share (ViT, ConvNeXt, EVA, FastViT): timm's `Mlp` (fc1, activation,
optional norm, fc2) and `LayerNorm2d` with timm's parameter names, and counting numbered layers in weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, act: Callable[[], nn.Module] = nn.GELU, out: int | None = None,
                 bias: tuple[bool, bool] = (True, True), norm_eps: float | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=bias[0])
        self.act = act()
        self.norm = nn.LayerNorm(hidden, eps=norm_eps) if norm_eps is not None else nn.Identity()  # EVA's scale_mlp
        self.fc2 = nn.Linear(hidden, out or dim, bias=bias[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(self.act(self.fc1(x))))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (timm's LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


def numbered(keys: Iterable[str], prefix: str) -> int:
    """How many numbered children (`prefix0.`, `prefix1.`, ...) a state dict has under `prefix`: depths and
    branch counts are read from the weights, never assumed."""
    return len({k[len(prefix):].split(".", 1)[0] for k in keys if k.startswith(prefix)})
