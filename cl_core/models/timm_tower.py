"""open_clip's timm image towers (`vision_cfg.timm_model_name`) for timm's plain ViTs, without timm:
BiomedCLIP's `vit_base_patch16_224`, the SigLIP family's `vit_*_siglip_*` (attention-pool "map" head), and
the other `vit_*` names in `timm_vits.TIMM_VITS`. Parameter names are timm's under `trunk.` and open_clip's
`head.` adapter, so `visual.*` of those state dicts loads as it is.

Sizes (width, depth, patch, grid, prefix tokens, which norms exist) are read from the weights; heads,
activation, norm eps and the default pooling come from timm's arguments for the name (and
`timm_model_kwargs`), never guessed. ConvNeXt trunks (`convnext_*`) are in `timm_convnext`, EVA-CLIP's
(`eva02_*_clip_*`, `eva_giant_patch14_clip_224`) in `timm_eva`, MobileCLIP's FastViT-MCi (`fastvit_mci*`) in `timm_fastvit`;
other timm families (ViTamin, Swin, ...) are refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cl_core.errors import CheckpointError
from cl_core.models.timm_convnext import TimmConvNeXt
from cl_core.models.timm_eva import TimmEva
from cl_core.models.timm_fastvit import TimmFastViT
from cl_core.models.timm_layers import Mlp, numbered
from cl_core.models.timm_vits import TIMM_VITS

_ACTS: dict[str | None, Callable[[], nn.Module]] = {
    None: nn.GELU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "quick_gelu": lambda: _QuickGELU()}
_ARGS = {"patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "class_token", "global_pool", "qkv_bias",
         "init_values", "fc_norm", "final_norm", "no_embed_class", "reg_tokens", "pre_norm", "act_layer", "norm_eps",
         "img_size", "drop_path_rate", "patch_drop_rate", "drop_rate"}


class _QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int, bias: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class _LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, qkv_bias: bool, layer_scale: bool,
                 act: Callable[[], nn.Module], norm: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.norm1 = norm(dim)
        self.attn = _Attention(dim, heads, qkv_bias)
        self.ls1: nn.Module = _LayerScale(dim) if layer_scale else nn.Identity()
        self.norm2 = norm(dim)
        self.mlp = Mlp(dim, hidden, act)
        self.ls2: nn.Module = _LayerScale(dim) if layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class _AttentionPoolLatent(nn.Module):
    """timm's "map" head: one learned latent query attends over the tokens, then a residual MLP."""

    def __init__(self, dim: int, heads: int, hidden: int, act: Callable[[], nn.Module],
                 norm: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.heads = heads
        self.latent = nn.Parameter(torch.zeros(1, 1, dim))
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)
        self.norm = norm(dim)
        self.mlp = Mlp(dim, hidden, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        hd = c // self.heads
        q = self.q(self.latent.expand(b, -1, -1)).reshape(b, 1, self.heads, hd).transpose(1, 2)
        k, v = self.kv(x).reshape(b, n, 2, self.heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
        x = self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, 1, c))
        x = x + self.mlp(self.norm(x))
        return x[:, 0]


class TimmViT(nn.Module):
    """timm's VisionTransformer forward (patch embed, prefix tokens, blocks, norm, pool, fc_norm, head)."""

    def __init__(self, args: dict[str, Any], keys: dict[str, torch.Size]) -> None:
        super().__init__()
        w = keys["patch_embed.proj.weight"]
        dim, patch = int(w[0]), int(w[-1])
        self.depth = numbered(keys, "blocks.")
        heads = int(args.get("num_heads", 0))
        if heads <= 0 or dim % heads:
            raise CheckpointError(f"timm ViT: {heads} heads do not divide the width {dim}")
        hidden = int(keys["blocks.0.mlp.fc1.weight"][0])
        eps = float(args.get("norm_eps", 1e-6))

        def norm(d: int) -> nn.Module:
            return nn.LayerNorm(d, eps=eps)

        act = _ACTS.get(args.get("act_layer"))
        if act is None:
            raise CheckpointError(f"timm ViT: activation {args.get('act_layer')!r} is not supported")
        self.patch_embed = _PatchEmbed(dim, patch, "patch_embed.proj.bias" in keys)
        self.cls_token = nn.Parameter(torch.zeros(keys["cls_token"])) if "cls_token" in keys else None
        self.reg_token = nn.Parameter(torch.zeros(keys["reg_token"])) if "reg_token" in keys else None
        self.prefix = (self.cls_token is not None) + (0 if self.reg_token is None else int(keys["reg_token"][1]))
        self.pos_embed = nn.Parameter(torch.zeros(keys["pos_embed"]))
        grid2 = int(keys["pos_embed"][1])
        self.no_embed_class = bool(args.get("no_embed_class", False))
        if not self.no_embed_class:
            grid2 -= self.prefix
        self.grid = round(grid2 ** 0.5)
        if self.grid * self.grid != grid2:
            raise CheckpointError(f"timm ViT: position embedding of {grid2} patches is not a square grid")
        self.image_size = self.grid * patch
        self.norm_pre: nn.Module = norm(dim) if "norm_pre.weight" in keys else nn.Identity()
        qkv_bias = "blocks.0.attn.qkv.bias" in keys
        self.blocks = nn.Sequential(*[
            _Block(dim, heads, hidden, qkv_bias, "blocks.0.ls1.gamma" in keys, act, norm) for _ in range(self.depth)])
        self.norm: nn.Module = norm(dim) if "norm.weight" in keys else nn.Identity()
        self.fc_norm: nn.Module = norm(dim) if "fc_norm.weight" in keys else nn.Identity()
        self.pool = str(args.get("global_pool", "token"))
        self.attn_pool: nn.Module | None = None
        if self.pool == "map":
            pool_hidden = int(keys["attn_pool.mlp.fc1.weight"][0]) if "attn_pool.mlp.fc1.weight" in keys else hidden
            self.attn_pool = _AttentionPoolLatent(dim, heads, pool_hidden, act, norm)
        elif self.pool not in ("token", "avg", "max", "avgmax"):
            raise CheckpointError(f"timm ViT: pooling {self.pool!r} is not supported")
        if self.pool == "token" and self.cls_token is None:
            raise CheckpointError("timm ViT: token pooling but the weights have no class token")
        self.head: nn.Module = nn.Linear(dim, int(keys["head.weight"][0])) if "head.weight" in keys else nn.Identity()
        self.num_features = dim
        self.out_dim = int(keys["head.weight"][0]) if "head.weight" in keys else dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        prefix = [t.expand(x.shape[0], -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        if self.no_embed_class:
            x = torch.cat([*prefix, x + self.pos_embed], dim=1)
        else:
            x = torch.cat([*prefix, x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(self.norm_pre(x)))
        if self.attn_pool is not None:
            x = self.attn_pool(x[:, self.prefix:])
        elif self.pool == "token":
            x = x[:, 0]
        else:
            tokens = x[:, self.prefix:]
            if self.pool == "avg":
                x = tokens.mean(1)
            elif self.pool == "max":
                x = tokens.amax(1)
            else:
                x = 0.5 * (tokens.amax(1) + tokens.mean(1))
        return self.head(self.fc_norm(x))


class TimmTower(nn.Module):
    """open_clip's TimmModel: `trunk` (the timm model) and `head` (optional linear or MLP projection)."""

    def __init__(self, vision_cfg: dict[str, Any], embed_dim: int, shapes: dict[str, torch.Size]) -> None:
        super().__init__()
        name = str(vision_cfg["timm_model_name"])
        pool = vision_cfg.get("timm_pool", "avg")
        proj = vision_cfg.get("timm_proj", "linear")
        trunk_keys = {k[len("trunk."):]: s for k, s in shapes.items() if k.startswith("trunk.")}
        self.trunk: TimmViT | TimmConvNeXt | TimmEva | TimmFastViT
        size = vision_cfg.get("image_size", 224)
        if name.startswith("fastvit"):
            unknown = sorted(set(vision_cfg.get("timm_model_kwargs") or {}) - {"layers", "embed_dims", "mlp_ratios"})
            if unknown:  # widths and depths are read from the weights; the rest would change the network
                raise CheckpointError(f"timm image tower {name!r}: arguments not supported: {', '.join(unknown)}")
            self.trunk = TimmFastViT(name, trunk_keys, pool, int(size[0] if isinstance(size, list | tuple) else size))
        elif name.startswith("eva"):
            if pool not in ("", "token", None):
                raise CheckpointError(f"timm image tower {name!r}: pooling {pool!r} is not supported (token only)")
            self.trunk = TimmEva(name, trunk_keys, dict(vision_cfg.get("timm_model_kwargs") or {}))
        elif name.startswith("convnext"):
            kwargs = dict(vision_cfg.get("timm_model_kwargs") or {})
            unknown = sorted(set(kwargs) - {"depths", "dims", "norm_eps", "drop_path_rate", "ls_init_value"})
            if unknown:  # sizes and layer scale are read from the weights; the rest would change the network
                raise CheckpointError(f"timm image tower {name!r}: arguments not supported: {', '.join(unknown)}")
            self.trunk = TimmConvNeXt(name, trunk_keys, pool or "avg",  # "": the network's default, avg
                                      int(size[0] if isinstance(size, list | tuple) else size), kwargs.get("norm_eps"))
        else:
            self.trunk = self._vit(name, vision_cfg, pool, proj, trunk_keys)
        self.head = nn.Sequential()
        prev = self.trunk.out_dim
        if proj == "linear":
            self.head.add_module("proj", nn.Linear(prev, embed_dim, bias=bool(vision_cfg.get("timm_proj_bias"))))
        elif proj == "mlp":
            self.head.add_module("mlp", Mlp(prev, 2 * embed_dim, nn.GELU, embed_dim,
                                             bias=(True, bool(vision_cfg.get("timm_proj_bias")))))
        elif proj not in ("none", "", None):
            raise CheckpointError(f"timm image tower: projection {proj!r} is not supported")
        self.image_size = self.trunk.image_size

    @staticmethod
    def _vit(name: str, vision_cfg: dict[str, Any], pool: str, proj: str,
             trunk_keys: dict[str, torch.Size]) -> TimmViT:
        if name not in TIMM_VITS:
            raise CheckpointError(
                f"timm image tower {name!r} is not supported (supported: timm's plain ViTs such as "
                "vit_base_patch16_224 and vit_*_siglip_*, ConvNeXt convnext_tiny ... convnext_xxlarge and "
                "EVA-CLIP's eva02_*_clip_* / eva_giant_patch14_clip_224 and MobileCLIP's fastvit_mci*; ViTamin and "
                "others are not)")
        args = {**TIMM_VITS[name], **(vision_cfg.get("timm_model_kwargs") or {})}
        unknown = sorted(set(args) - _ARGS)
        if unknown:
            raise CheckpointError(f"timm image tower {name!r}: arguments not supported: {', '.join(unknown)}")
        if pool in ("abs_attn", "rot_attn"):
            raise CheckpointError(f"timm image tower: pooling {pool!r} is not supported")
        if pool:
            args["global_pool"] = pool
        elif proj not in ("linear", "mlp"):
            raise CheckpointError("timm image tower: no pooling and no projection gives tokens, not an embedding")
        if "patch_embed.proj.weight" not in trunk_keys:
            raise CheckpointError(f"timm image tower {name!r}: the weights have no trunk.patch_embed")
        return TimmViT(args, trunk_keys)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))
