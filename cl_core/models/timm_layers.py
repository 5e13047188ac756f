"""timm's `Mlp` (fc1, activation, optional norm, fc2), shared by the timm towers written here (ViT, ConvNeXt,
EVA) so that each keeps timm's parameter names without its own copy."""

from __future__ import annotations

from collections.abc import Callable

import torch
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
