"""timm's EVA trunks for open_clip's `EVA02-*` and `EVA01-g-14*` image towers (EVA-CLIP), without timm.

The layout of timm's `eva02_*_clip_*` models (EVA-01's `eva_giant_patch14_clip_224`: no rotary embedding,
fused qkv with q/v biases, a GELU MLP, no inner norms — each told by its keys): patch embedding, class token and absolute position embedding,
2-D rotary position embedding on the patch tokens (timm's "cat" RoPE: inverse-frequency bands, positions
rescaled to the reference grid of pretraining), blocks with separate q/k/v projections (k without bias), a
LayerNorm on the attention output before its projection, a SwiGLU MLP with a LayerNorm inside, then the
final norm, the class token, and timm's classifier as the projection (open_clip's `timm_proj: null`).
Parameter names are timm's, so `visual.trunk.*` loads as it is; widths, depth, patch, grid and MLP width come
from the weights, heads and the reference grid from timm's arguments for the name.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cl_core.errors import CheckpointError
from cl_core.models.timm_layers import Mlp, numbered

# name -> timm's arguments that the weights do not tell (timm 1.0.31)
EVAS: dict[str, dict[str, Any]] = {
    "eva02_base_patch16_clip_224": {"num_heads": 12, "ref_feat_shape": (16, 16)},
    "eva02_large_patch14_clip_224": {"num_heads": 16, "ref_feat_shape": (16, 16)},
    "eva02_large_patch14_clip_336": {"num_heads": 16, "ref_feat_shape": (16, 16)},
    "eva_giant_patch14_clip_224": {"num_heads": 16, "ref_feat_shape": None},  # EVA-01: no rotary embedding
}
EPS = 1e-6
TEMPERATURE = 10000.0


def rope_table(grid: tuple[int, int], ref: tuple[int, int], head_dim: int) -> torch.Tensor:
    """[H*W, 2*head_dim]: sin then cos of each patch's angles, interleaved pairs (timm's RotaryEmbeddingCat)."""
    bands_n = head_dim // 4
    bands = 1.0 / (TEMPERATURE ** (torch.arange(bands_n, dtype=torch.int64).to(torch.float32) / bands_n))
    axes = [torch.arange(s, dtype=torch.int64).to(torch.float32) / s * r for s, r in zip(grid, ref, strict=True)]
    pos = torch.stack(torch.meshgrid(axes, indexing="ij"), dim=-1).unsqueeze(-1) * bands  # [H, W, 2, bands]
    sin = pos.sin().flatten(-2).flatten(0, -2).repeat_interleave(2, -1)
    cos = pos.cos().flatten(-2).flatten(0, -2).repeat_interleave(2, -1)
    return torch.cat([sin, cos], -1)


def _rotate(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    sin, cos = table.chunk(2, -1)
    turned = torch.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)
    return (x * cos + turned * sin).to(x.dtype)


class _Attention(nn.Module):
    """EVA02's separate q/k/v projections (k without bias) or EVA-01's fused qkv with q and v biases."""

    def __init__(self, dim: int, heads: int, keys: set[str], prefix: str) -> None:
        super().__init__()
        self.heads = heads
        self.fused = f"{prefix}qkv.weight" in keys
        if self.fused:
            self.qkv = nn.Linear(dim, 3 * dim, bias=False)
            self.q_bias = nn.Parameter(torch.zeros(dim)) if f"{prefix}q_bias" in keys else None
            self.v_bias = nn.Parameter(torch.zeros(dim)) if f"{prefix}v_bias" in keys else None
        else:
            self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim, bias=False)
            self.v_proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim, eps=EPS) if f"{prefix}norm.weight" in keys else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, _ = x.shape
        if not self.fused:
            q, k, v = (p(x).reshape(b, n, self.heads, -1).transpose(1, 2)
                       for p in (self.q_proj, self.k_proj, self.v_proj))
            return q, k, v
        bias = None
        if self.q_bias is not None and self.v_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        return q, k, v

    def forward(self, x: torch.Tensor, rope: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self._qkv(x)
        if rope is not None:  # the class token is not turned
            q = torch.cat([q[:, :, :1], _rotate(q[:, :, 1:], rope)], dim=2).type_as(v)
            k = torch.cat([k[:, :, :1], _rotate(k[:, :, 1:], rope)], dim=2).type_as(v)
        x = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)
        return self.proj(self.norm(x))


class _SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int, inner_norm: bool) -> None:
        super().__init__()
        self.fc1_g, self.fc1_x = nn.Linear(dim, hidden), nn.Linear(dim, hidden)
        self.norm = nn.LayerNorm(hidden, eps=EPS) if inner_norm else nn.Identity()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(F.silu(self.fc1_g(x)) * self.fc1_x(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, keys: dict[str, torch.Size], prefix: str) -> None:
        super().__init__()
        names = set(keys)
        self.norm1 = nn.LayerNorm(dim, eps=EPS)
        self.attn = _Attention(dim, heads, names, f"{prefix}attn.")
        self.norm2 = nn.LayerNorm(dim, eps=EPS)
        inner = f"{prefix}mlp.norm.weight" in names
        self.mlp: nn.Module
        if f"{prefix}mlp.fc1_g.weight" in names:
            self.mlp = _SwiGLU(dim, keys[f"{prefix}mlp.fc1_g.weight"][0], inner)
        elif f"{prefix}mlp.fc1.weight" in names:
            self.mlp = Mlp(dim, keys[f"{prefix}mlp.fc1.weight"][0], norm_eps=EPS if inner else None)
        else:
            raise CheckpointError(f"timm EVA block {prefix[:-1]} has no MLP timm's EVA layout knows")
        self.gamma_1 = nn.Parameter(torch.ones(dim)) if f"{prefix}gamma_1" in names else None
        self.gamma_2 = nn.Parameter(torch.ones(dim)) if f"{prefix}gamma_2" in names else None

    def forward(self, x: torch.Tensor, rope: torch.Tensor | None) -> torch.Tensor:
        y = self.attn(self.norm1(x), rope)
        x = x + (y if self.gamma_1 is None else self.gamma_1 * y)
        y = self.mlp(self.norm2(x))
        return x + (y if self.gamma_2 is None else self.gamma_2 * y)


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class TimmEva(nn.Module):
    """timm's Eva for the EVA02 CLIP names: class-token pooling, post norm, optional classifier (`head`)."""

    def __init__(self, name: str, keys: dict[str, torch.Size], kwargs: dict[str, Any]) -> None:
        super().__init__()
        if name not in EVAS:
            raise CheckpointError(f"timm EVA tower {name!r} is not supported (supported: {', '.join(EVAS)})")
        unknown = sorted(set(kwargs) - {"embed_dim", "depth", "num_heads", "img_size", "patch_size", "drop_path_rate"})
        if unknown:
            raise CheckpointError(f"timm EVA tower {name!r}: arguments not supported: {', '.join(unknown)}")
        needed = ("patch_embed.proj.weight", "cls_token", "pos_embed", "blocks.0.norm1.weight", "norm.weight")
        missing = [k for k in needed if k not in keys]
        if missing:
            raise CheckpointError(f"timm EVA tower {name!r}: the weights are not EVA02's layout "
                                  f"(no trunk.{missing[0]})")
        if "blocks.0.attn.qkv.weight" not in keys and "blocks.0.attn.q_proj.weight" not in keys:
            raise CheckpointError(f"timm EVA tower {name!r}: the weights have no attention projections timm's "
                                  "EVA layout knows")
        heads = int(kwargs.get("num_heads", EVAS[name]["num_heads"]))
        ref = EVAS[name]["ref_feat_shape"]
        dim, _, patch, _ = keys["patch_embed.proj.weight"]
        tokens = keys["pos_embed"][1] - 1
        side = int(round(tokens ** 0.5))
        if side * side != tokens or dim % heads or (ref is not None and (dim // heads) % 4):
            raise CheckpointError(f"timm EVA tower {name!r}: {tokens} position embeddings and width {dim} with "
                                  f"{heads} heads do not make a square grid of rotary heads")
        depth = numbered(keys, "blocks.")
        self.patch_embed = _PatchEmbed(dim, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        self.blocks = nn.ModuleList(_Block(dim, heads, keys, f"blocks.{i}.") for i in range(depth))
        self.norm = nn.LayerNorm(dim, eps=EPS)
        self.head = nn.Linear(dim, keys["head.weight"][0]) if "head.weight" in keys else nn.Identity()
        self.rope: torch.Tensor | None
        if ref is not None:
            self.register_buffer("rope", rope_table((side, side), tuple(ref), dim // heads), persistent=False)
        else:
            self.rope = None
        self.image_size = side * patch
        self.out_dim = keys["head.weight"][0] if "head.weight" in keys else dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x, self.rope)
        return self.head(self.norm(x)[:, 0])
