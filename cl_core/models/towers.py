"""Native tower architectures, a registry declared as data: arch name -> (modalities, builder).

Each tower maps a prepared batch to [N, embed_dim] features. The trainer (issue 3) and the native
checkpoint loader both build towers from here, so a saved config always rebuilds the same network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cl_core.errors import CheckpointError
from cl_core.modality import Modality
from cl_core.models.clip_arch import TextCfg, TextTower, VisionCfg, VisionTower


class ConvTower(nn.Module):
    """Small strided CNN with GroupNorm (batch-independent) and a projection.

    pool="avg": global average pool (what is there); pool="flatten": the final feature grid is projected
    as a whole (where it is), e.g. to match an H&E patch with the mIF patch of the very same cells;
    pool="both": both, concatenated (layout for image-image pairs, global statistics for text).
    hidden: an MLP head after pooling. Without one the embedding is affine in the pooled features; with one
    it can combine them non-linearly (a count's bucket, one finding given another) before the cosine.
    """

    def __init__(self, in_channels: int, widths: list[int], embed_dim: int, pool: str = "avg",
                 input_size: int = 64, hidden: list[int] | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for w in widths:
            layers += [nn.Conv2d(prev, w, 3, stride=2, padding=1), nn.GroupNorm(min(8, w), w), nn.GELU(),
                       nn.Conv2d(w, w, 3, padding=1), nn.GroupNorm(min(8, w), w), nn.GELU()]
            prev = w
        self.body = nn.Sequential(*layers)
        if pool not in ("avg", "flatten", "both"):
            raise CheckpointError(f"unknown conv pooling {pool!r} (avg, flatten or both)")
        self.pool = pool
        side = input_size
        for _ in widths:
            side = (side + 1) // 2
        flat = prev * side * side
        width = {"avg": prev, "flatten": flat, "both": flat + prev}[pool]
        head: list[nn.Module] = []
        for h in hidden or []:
            head += [nn.Linear(width, h), nn.GELU()]
            width = h
        # a plain Linear when there is no hidden layer: the key names (proj.weight) of earlier checkpoints
        self.proj: nn.Module = nn.Sequential(*head, nn.Linear(width, embed_dim)) if head else nn.Linear(width, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.body(x)
        if self.pool == "avg":
            return self.proj(feats.mean(dim=(2, 3)))
        if self.pool == "flatten":
            return self.proj(feats.flatten(1))
        return self.proj(torch.cat([feats.flatten(1), feats.mean(dim=(2, 3))], dim=1))


@dataclass(frozen=True)
class TowerSpec:
    modalities: frozenset[Modality]
    build: Callable[[dict[str, Any], int], nn.Module]
    description: str


def _conv(cfg: dict[str, Any], embed_dim: int) -> nn.Module:
    return ConvTower(int(cfg.get("in_channels", 3)), [int(w) for w in cfg.get("widths", [32, 64, 128])], embed_dim,
                     pool=str(cfg.get("pool", "avg")), input_size=int(cfg.get("preprocess", {}).get("size", 64)),
                     hidden=[int(h) for h in cfg.get("hidden", [])])


def _audio_conv(cfg: dict[str, Any], embed_dim: int) -> nn.Module:
    return ConvTower(1, [int(w) for w in cfg.get("widths", [32, 64, 128])], embed_dim)


def _vit(cfg: dict[str, Any], embed_dim: int) -> nn.Module:
    vc = VisionCfg(**{k: v for k, v in cfg.items() if k in VisionCfg.__dataclass_fields__})
    return VisionTower(vc, embed_dim, bool(cfg.get("quick_gelu", False)))


def _clip_text(cfg: dict[str, Any], embed_dim: int) -> nn.Module:
    tc = TextCfg(**{k: v for k, v in cfg.items() if k in TextCfg.__dataclass_fields__})
    return TextTower(tc, embed_dim, bool(cfg.get("quick_gelu", False)))


def _sentence(cfg: dict[str, Any], embed_dim: int) -> nn.Module:
    from cl_core.models.sentence_tower import SentenceTower

    return SentenceTower(cfg, embed_dim)


TOWERS: dict[str, TowerSpec] = {
    "conv": TowerSpec(frozenset({Modality.IMAGE, Modality.MULTICHANNEL}), _conv,
                      "strided CNN over images or channel stacks"),
    "vit": TowerSpec(frozenset({Modality.IMAGE}), _vit, "CLIP-style vision transformer"),
    "audio_conv": TowerSpec(frozenset({Modality.AUDIO}), _audio_conv, "CNN over log-mel windows"),
    "clip_text": TowerSpec(frozenset({Modality.TEXT}), _clip_text, "CLIP text transformer, CLIP BPE"),
    "sentence": TowerSpec(frozenset({Modality.TEXT}), _sentence,
                          "frozen sentence encoder (all-MiniLM-L6-v2) + trained projection"),
}


def frozen_keys(net: nn.Module) -> tuple[str, ...]:
    """State-dict prefixes of submodules loaded from elsewhere (frozen encoders), never saved."""
    out = []
    for name, module in net.named_modules():
        for prefix in getattr(module, "frozen_prefixes", ()):
            out.append(f"{name}.{prefix}" if name else prefix)
    return tuple(out)


def build_tower(modality: Modality, cfg: dict[str, Any], embed_dim: int) -> tuple[nn.Module, TowerSpec]:
    arch = cfg.get("arch")
    spec = TOWERS.get(str(arch))
    if spec is None:
        raise CheckpointError(f"unknown {modality.value} tower architecture {arch!r}; known: {', '.join(TOWERS)}")
    if modality not in spec.modalities:
        raise CheckpointError(f"tower architecture {arch!r} cannot embed {modality.value}")
    return spec.build(cfg, embed_dim), spec
