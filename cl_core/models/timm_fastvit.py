"""timm's FastViT-MCi trunks for open_clip's MobileCLIP image towers (`fastvit_mci0` ... `fastvit_mci4`),
without timm, in the training-time layout open_clip builds and MobileCLIP's open_clip checkpoints carry.

MobileOne blocks (a sum of k×k conv+BN branches, a 1×1 branch and an identity BN, then squeeze-excite and
GELU), large-kernel patch embeddings, RepMixer blocks, conditional position encodings and attention blocks in
the last stages, a final MobileOne conv and timm's classifier as open_clip's projection. Parameter names are
timm's, so `visual.trunk.*` loads as it is; branches, widths, kernels, groups and the number of stages are
read from the weights, strides from timm's fixed layout. Checkpoints re-parameterised for inference (single
`reparam_conv` weights) are refused, naming it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cl_core.errors import CheckpointError
from cl_core.models.timm_layers import LayerNorm2d, numbered

NAMES = ("fastvit_mci0", "fastvit_mci1", "fastvit_mci2", "fastvit_mci3", "fastvit_mci4")
HEAD_DIM = 32  # timm's FastViT attention


class _ConvBN(nn.Module):
    """timm's ConvNormAct without activation: conv (no bias, symmetric padding) and BatchNorm; its groups
    follow from the input width and the weight's input channels per group."""

    def __init__(self, keys: dict[str, torch.Size], prefix: str, cin: int, stride: int) -> None:
        super().__init__()
        out, per_group, k, _ = keys[f"{prefix}conv.weight"]
        self.conv = nn.Conv2d(cin, out, k, stride, ((stride - 1) + (k - 1)) // 2, groups=cin // per_group, bias=False)
        self.bn = nn.BatchNorm2d(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _SE(nn.Module):
    def __init__(self, keys: dict[str, torch.Size], prefix: str) -> None:
        super().__init__()
        rd, ch = keys[f"{prefix}fc1.weight"][:2]
        self.fc1, self.fc2 = nn.Conv2d(ch, rd, 1), nn.Conv2d(rd, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * s.sigmoid()


def _check_not_reparam(keys: dict[str, torch.Size], prefix: str) -> None:
    if f"{prefix}reparam_conv.weight" in keys:
        raise CheckpointError(f"FastViT {prefix[:-1]}: this checkpoint was re-parameterised for inference "
                              "(reparam_conv); only the training-time layout open_clip saves is supported")


class _MobileOne(nn.Module):
    def __init__(self, keys: dict[str, torch.Size], prefix: str, cin: int, stride: int, act: bool) -> None:
        super().__init__()
        _check_not_reparam(keys, prefix)
        self.identity = nn.BatchNorm2d(cin) if f"{prefix}identity.weight" in keys else None
        n = numbered(keys, f"{prefix}conv_kxk.")
        self.conv_kxk = nn.ModuleList(_ConvBN(keys, f"{prefix}conv_kxk.{j}.", cin, stride) for j in range(n)) \
            if n else None
        self.conv_scale = _ConvBN(keys, f"{prefix}conv_scale.", cin, stride) \
            if f"{prefix}conv_scale.conv.weight" in keys else None
        self.se = _SE(keys, f"{prefix}se.") if f"{prefix}se.fc1.weight" in keys else nn.Identity()
        self.act = nn.GELU() if act else nn.Identity()
        if self.conv_kxk is not None:
            self.out = int(keys[f"{prefix}conv_kxk.0.conv.weight"][0])
        elif self.conv_scale is not None:
            self.out = int(keys[f"{prefix}conv_scale.conv.weight"][0])
        else:
            self.out = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.identity(x) if self.identity is not None else 0
        if self.conv_scale is not None:
            out = out + self.conv_scale(x)
        for branch in self.conv_kxk or ():
            out = out + branch(x)
        assert isinstance(out, torch.Tensor)
        return self.act(self.se(out))


class _LargeKernel(nn.Module):
    def __init__(self, keys: dict[str, torch.Size], prefix: str, cin: int, act: bool) -> None:
        super().__init__()
        _check_not_reparam(keys, prefix)
        self.large_conv = _ConvBN(keys, f"{prefix}large_conv.", cin, 2)
        self.small_conv = _ConvBN(keys, f"{prefix}small_conv.", cin, 2) \
            if f"{prefix}small_conv.conv.weight" in keys else None
        self.se = _SE(keys, f"{prefix}se.") if f"{prefix}se.fc1.weight" in keys else nn.Identity()
        self.act = nn.GELU() if act else nn.Identity()
        self.out = int(keys[f"{prefix}large_conv.conv.weight"][0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.large_conv(x)
        if self.small_conv is not None:
            out = out + self.small_conv(x)
        return self.act(self.se(out))


class _Scale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _ConvMlp(nn.Module):
    def __init__(self, keys: dict[str, torch.Size], prefix: str, dim: int) -> None:
        super().__init__()
        hidden = keys[f"{prefix}fc1.weight"][0]
        self.conv = _ConvBN(keys, f"{prefix}conv.", dim, 1)
        self.fc1, self.act, self.fc2 = nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.conv(x))))


class _RepMixer(nn.Module):
    def __init__(self, keys: dict[str, torch.Size], prefix: str, dim: int) -> None:
        super().__init__()
        _check_not_reparam(keys, prefix)
        self.norm = _MobileOne(keys, f"{prefix}norm.", dim, 1, act=False)
        self.mixer = _MobileOne(keys, f"{prefix}mixer.", dim, 1, act=False)
        self.layer_scale = _Scale(dim) if f"{prefix}layer_scale.gamma" in keys else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer_scale(self.mixer(x) - self.norm(x))


class _Attention(nn.Module):
    def __init__(self, keys: dict[str, torch.Size], prefix: str, dim: int) -> None:
        super().__init__()
        self.heads = dim // HEAD_DIM
        self.qkv = nn.Linear(dim, 3 * dim, bias=f"{prefix}qkv.bias" in keys)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(-2, -1)
        q, k, v = self.qkv(t).reshape(b, h * w, 3, self.heads, HEAD_DIM).permute(2, 0, 3, 1, 4).unbind(0)
        t = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, c)
        return self.proj(t).transpose(-2, -1).reshape(b, c, h, w)


class _Block(nn.Module):
    """RepMixerBlock (token_mixer.mixer) or AttentionBlock (norm + token_mixer.qkv), as the keys say."""

    def __init__(self, keys: dict[str, torch.Size], prefix: str, dim: int) -> None:
        super().__init__()
        self.attention = f"{prefix}token_mixer.qkv.weight" in keys
        if self.attention:  # BatchNorm in MCi0-2, LayerNorm2d (eps 1e-5) in MCi3/4: running stats tell them apart
            self.norm: nn.Module = nn.BatchNorm2d(dim) if f"{prefix}norm.running_mean" in keys else LayerNorm2d(dim, eps=1e-5)
            self.token_mixer: nn.Module = _Attention(keys, f"{prefix}token_mixer.", dim)
            self.layer_scale_1 = _Scale(dim) if f"{prefix}layer_scale_1.gamma" in keys else nn.Identity()
            self.layer_scale_2 = _Scale(dim) if f"{prefix}layer_scale_2.gamma" in keys else nn.Identity()
        else:
            self.token_mixer = _RepMixer(keys, f"{prefix}token_mixer.", dim)
            self.layer_scale = _Scale(dim) if f"{prefix}layer_scale.gamma" in keys else nn.Identity()
        self.mlp = _ConvMlp(keys, f"{prefix}mlp.", dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.attention:
            x = x + self.layer_scale_1(self.token_mixer(self.norm(x)))
            return x + self.layer_scale_2(self.mlp(x))
        x = self.token_mixer(x)
        return x + self.layer_scale(self.mlp(x))


class _PosEnc(nn.Module):
    def __init__(self, keys: dict[str, torch.Size], prefix: str, dim: int) -> None:
        super().__init__()
        _check_not_reparam(keys, prefix)
        k = keys[f"{prefix}pos_enc.weight"][-1]
        self.pos_enc = nn.Conv2d(dim, dim, k, 1, k // 2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pos_enc(x) + x


class _PatchEmbed(nn.Module):
    def __init__(self, keys: dict[str, torch.Size], prefix: str, cin: int) -> None:
        super().__init__()
        first = _LargeKernel(keys, f"{prefix}proj.0.", cin, act=True)  # lkc_use_act: every MCi name
        self.proj = nn.Sequential(first, _MobileOne(keys, f"{prefix}proj.1.", first.out, 1, act=True))
        self.out = first.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class _Stage(nn.Module):
    def __init__(self, keys: dict[str, torch.Size], prefix: str, cin: int) -> None:
        super().__init__()
        down = f"{prefix}downsample.proj.0.large_conv.conv.weight" in keys
        self.downsample: nn.Module = _PatchEmbed(keys, f"{prefix}downsample.", cin) if down else nn.Identity()
        dim = self.downsample.out if isinstance(self.downsample, _PatchEmbed) else cin
        self.pos_emb: nn.Module = _PosEnc(keys, f"{prefix}pos_emb.", dim) \
            if f"{prefix}pos_emb.pos_enc.weight" in keys or f"{prefix}pos_emb.reparam_conv.weight" in keys \
            else nn.Identity()
        depth = numbered(keys, f"{prefix}blocks.")
        self.blocks = nn.Sequential(*(_Block(keys, f"{prefix}blocks.{j}.", dim) for j in range(depth)))
        self.out = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.pos_emb(self.downsample(x)))


class _Head(nn.Module):
    """timm's ClassifierHead: average pool, then the classifier (open_clip's projection) or nothing."""

    def __init__(self, fc: nn.Module) -> None:
        super().__init__()
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))


class TimmFastViT(nn.Module):
    """timm's FastVit (MCi) with the classifier open_clip keeps as its projection (or none)."""

    def __init__(self, name: str, keys: dict[str, torch.Size], pool: str, image_size: int) -> None:
        super().__init__()
        if name not in NAMES:
            raise CheckpointError(f"timm FastViT {name!r} is not supported (supported: {', '.join(NAMES)}, "
                                  "MobileCLIP's image towers)")
        if pool not in ("avg", ""):
            raise CheckpointError(f"timm FastViT {name!r}: pooling {pool!r} is not supported (avg only)")
        if "stem.0.conv_kxk.0.conv.weight" not in keys and "stem.0.reparam_conv.weight" not in keys:
            raise CheckpointError(f"timm FastViT {name!r}: the weights have no MobileOne stem (trunk.stem.0)")
        self.image_size = image_size
        s0 = _MobileOne(keys, "stem.0.", 3, 2, act=True)
        s1 = _MobileOne(keys, "stem.1.", s0.out, 2, act=True)
        s2 = _MobileOne(keys, "stem.2.", s1.out, 1, act=True)
        self.stem = nn.Sequential(s0, s1, s2)
        stages, cin = [], s2.out
        count = numbered(keys, "stages.")
        for i in range(count):
            stage = _Stage(keys, f"stages.{i}.", cin)
            stages.append(stage)
            cin = stage.out
        self.stages = nn.Sequential(*stages)
        self.final_conv = _MobileOne(keys, "final_conv.", cin, 1, act=True)
        self.head = _Head(nn.Linear(self.final_conv.out, keys["head.fc.weight"][0]) if "head.fc.weight" in keys
                          else nn.Identity())
        self.out_dim = int(keys["head.fc.weight"][0]) if "head.fc.weight" in keys else self.final_conv.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final_conv(self.stages(self.stem(x)))
        return self.head(x)
