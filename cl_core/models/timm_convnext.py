"""timm's ConvNeXt trunk for open_clip's `convnext_*` image towers (LAION's ConvNeXt CLIPs), without timm.

Parameter names are timm's (`stem`, `stages.i.downsample`, `stages.i.blocks.j.{conv_dw,norm,mlp,gamma}`,
`head.norm`, `head.fc`), so `visual.trunk.*` loads as it is. Depths, widths, kernel size, layer
scale and conv biases are read from the weights; the norm eps comes from timm's arguments for the name
(1e-6, xxlarge 1e-5). The ConvNeXt-V1 layout open_clip uses is built (patch stem, channels-last MLP, no GRN);
variants with a conv MLP, GRN (V2) or an overlapping stem are refused by name.
"""

from __future__ import annotations

import torch
from torch import nn

from cl_core.errors import CheckpointError
from cl_core.models.timm_layers import LayerNorm2d, Mlp, numbered

# name -> norm eps (timm 1.0.31: convnext_tiny ... xxlarge, the ones open_clip's configs name)
CONVNEXTS: dict[str, float] = {"convnext_tiny": 1e-6, "convnext_small": 1e-6, "convnext_base": 1e-6,
                               "convnext_large": 1e-6, "convnext_xlarge": 1e-6,
                               "convnext_xxlarge": 1e-5}
POOLS = ("avg", "max", "avgmax")


class _Block(nn.Module):
    def __init__(self, dim: int, kernel: int, hidden: int, bias: bool, layer_scale: bool, eps: float) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=bias)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, hidden)
        self.gamma = nn.Parameter(torch.ones(dim)) if layer_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(self.norm(self.conv_dw(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        if self.gamma is not None:
            y = y * self.gamma.reshape(1, -1, 1, 1)
        return x + y


class _Stage(nn.Module):
    def __init__(self, keys: dict[str, torch.Size], prefix: str, cin: int, eps: float, bias: bool) -> None:
        super().__init__()
        down = f"{prefix}downsample.1.weight"
        cout = keys[down][0] if down in keys else cin
        self.downsample = nn.Sequential(LayerNorm2d(cin, eps=eps), nn.Conv2d(cin, cout, 2, stride=2, bias=bias)) \
            if down in keys else nn.Identity()
        depth = numbered(keys, f"{prefix}blocks.")
        blocks = []
        for j in range(depth):
            b = f"{prefix}blocks.{j}."
            if f"{b}conv_dw.weight" not in keys or f"{b}mlp.fc1.weight" not in keys:
                raise CheckpointError(f"ConvNeXt block {b[:-1]} is not timm's V1 layout (conv_dw, norm, mlp)")
            blocks.append(_Block(cout, keys[f"{b}conv_dw.weight"][-1], keys[f"{b}mlp.fc1.weight"][0],
                                 f"{b}conv_dw.bias" in keys, f"{b}gamma" in keys, eps))
        self.blocks = nn.Sequential(*blocks)
        self.out = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class _Head(nn.Module):
    """timm's NormMlpClassifierHead after pooling: norm, flatten, classifier (none, or open_clip's projection)."""

    def __init__(self, norm: nn.Module, fc: nn.Module) -> None:
        super().__init__()
        self.norm, self.fc = norm, fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x).flatten(1))


class TimmConvNeXt(nn.Module):
    """timm's ConvNeXt with its classifier reset to none (open_clip's `reset_classifier(0)`): stem, four
    stages, global pool, head norm, and timm's classifier where open_clip uses it as the projection."""

    def __init__(self, name: str, keys: dict[str, torch.Size], pool: str, image_size: int,
                 norm_eps: float | None = None) -> None:
        super().__init__()
        self.image_size = image_size  # any size works for a convolutional trunk: the config's
        if name not in CONVNEXTS:
            raise CheckpointError(f"timm ConvNeXt {name!r} is not supported (supported: {', '.join(CONVNEXTS)}; "
                                  "ConvNeXt-V2, conv-MLP and overlapping-stem variants are not)")
        if pool not in POOLS:
            raise CheckpointError(f"timm ConvNeXt: pooling {pool!r} is not supported (supported: {', '.join(POOLS)})")
        if "stem.0.weight" not in keys or "stem.1.weight" not in keys:
            raise CheckpointError(f"timm ConvNeXt {name!r}: the weights have no patch stem (trunk.stem.0/1)")
        eps = float(norm_eps) if norm_eps is not None else CONVNEXTS[name]
        bias = "stem.0.bias" in keys
        width, _, patch, _ = keys["stem.0.weight"]
        self.stem = nn.Sequential(nn.Conv2d(3, width, patch, stride=patch, bias=bias), LayerNorm2d(width, eps=eps))
        stages, cin = [], width
        for i in range(4):
            stage = _Stage(keys, f"stages.{i}.", cin, eps, bias)
            stages.append(stage)
            cin = stage.out
        self.stages = nn.Sequential(*stages)
        if "head.pre_logits.fc.weight" in keys:  # timm's *_mlp heads: open_clip cannot build them either
            raise CheckpointError(f"timm ConvNeXt {name!r}: a pre-logits MLP head is not supported")
        # open_clip with no projection of its own keeps timm's classifier as the projection
        fc: nn.Module = nn.Linear(cin, keys["head.fc.weight"][0]) if "head.fc.weight" in keys else nn.Identity()
        self.head = _Head(LayerNorm2d(cin, eps=eps), fc)
        cin = keys["head.fc.weight"][0] if "head.fc.weight" in keys else cin
        self.pool = pool
        self.out_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        if self.pool == "avg":
            x = x.mean((2, 3), keepdim=True)
        elif self.pool == "max":
            x = x.amax((2, 3), keepdim=True)
        else:
            x = 0.5 * (x.mean((2, 3), keepdim=True) + x.amax((2, 3), keepdim=True))
        return self.head(x)
