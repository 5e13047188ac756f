"""The CLIP ViT and text transformers with open_clip/OpenAI parameter names, so their state dicts load as
they are: quick-GELU or GELU (exact or tanh), layer scale, token or average pooling, optional ln_pre, CoCa's
attentional pooler and appended text class token, causal or bidirectional text attention, argmax/last/first/eos
text pooling. Which open_clip options reach here is decided in `openclip_build`, which refuses the rest by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cl_core.errors import CheckpointError


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(init * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class LayerNormFp32(nn.LayerNorm):
    """LayerNorm computed in fp32 (as CLIP does), cast back to the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


def activation(quick_gelu: bool, approximate: str = "none") -> nn.Module:
    return QuickGELU() if quick_gelu else nn.GELU(approximate=approximate)


class ResidualBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float, quick_gelu: bool, ls_init: float | None,
                 eps: float = 1e-5, act_approx: str = "none") -> None:
        super().__init__()
        self.ln_1 = LayerNormFp32(width, eps=eps)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ls_1 = LayerScale(width, ls_init) if ls_init is not None else nn.Identity()
        self.ln_2 = LayerNormFp32(width, eps=eps)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, hidden))
        self.mlp.add_module("gelu", activation(quick_gelu, act_approx))
        self.mlp.add_module("c_proj", nn.Linear(hidden, width))
        self.ls_2 = LayerScale(width, ls_init) if ls_init is not None else nn.Identity()

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.ls_1(self.attn(y, y, y, need_weights=False, attn_mask=attn_mask)[0])
        return x + self.ls_2(self.mlp(self.ln_2(x)))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float, quick_gelu: bool,
                 ls_init: float | None, eps: float = 1e-5, act_approx: str = "none") -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            [ResidualBlock(width, heads, mlp_ratio, quick_gelu, ls_init, eps, act_approx) for _ in range(layers)])

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


@dataclass(frozen=True)
class VisionCfg:
    image_size: int = 224
    patch_size: int = 16
    width: int = 768
    layers: int = 12
    head_width: int = 64
    mlp_ratio: float = 4.0
    ls_init_value: float | None = None
    pool_type: str = "tok"
    no_ln_pre: bool = False
    final_ln_after_pool: bool = False
    attentional_pool: bool = False  # CoCa: learned queries attend over the tokens; the first one is pooled
    attn_pooler_queries: int = 256
    attn_pooler_heads: int = 8
    norm_eps: float = 1e-5
    act_approx: str = "none"


@dataclass(frozen=True)
class TextCfg:
    context_length: int = 77
    vocab_size: int = 49408
    width: int = 512
    heads: int = 8
    layers: int = 12
    mlp_ratio: float = 4.0
    ls_init_value: float | None = None
    pool_type: str = "argmax"
    proj_bias: bool = False
    proj_type: str = "linear"  # or "none"
    embed_cls: bool = False  # CoCa: a class embedding appended after the tokens is pooled
    no_causal_mask: bool = False
    pad_id: int = 0
    eos_id: int | None = None
    norm_eps: float = 1e-5
    act_approx: str = "none"


class AttentionalPooler(nn.Module):
    """CoCa's pooler: `queries` learned queries attend (cross-attention) over the image tokens."""

    def __init__(self, dim: int, context_dim: int, heads: int, queries: int, eps: float) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(queries, dim))
        self.attn = nn.MultiheadAttention(dim, heads, kdim=context_dim, vdim=context_dim, batch_first=True)
        self.ln_q = LayerNormFp32(dim, eps=eps)
        self.ln_k = LayerNormFp32(context_dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_k(x)
        q = self.ln_q(self.query).unsqueeze(0).expand(x.shape[0], -1, -1)
        return self.attn(q, x, x, need_weights=False)[0]


class VisionTower(nn.Module):
    def __init__(self, cfg: VisionCfg, embed_dim: int, quick_gelu: bool) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        if cfg.image_size % cfg.patch_size:
            raise CheckpointError(f"image_size {cfg.image_size} is not a multiple of patch_size {cfg.patch_size}")
        grid = cfg.image_size // cfg.patch_size
        self.conv1 = nn.Conv2d(3, w, cfg.patch_size, cfg.patch_size, bias=False)
        scale = w ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(w))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, w))
        self.ln_pre = nn.Identity() if cfg.no_ln_pre else LayerNormFp32(w, eps=cfg.norm_eps)
        heads = max(1, w // cfg.head_width)
        self.transformer = Transformer(w, cfg.layers, heads, cfg.mlp_ratio, quick_gelu, cfg.ls_init_value,
                                       cfg.norm_eps, cfg.act_approx)
        self.attn_pool: AttentionalPooler | None = None
        pool_dim = w
        if cfg.attentional_pool:
            self.attn_pool = AttentionalPooler(embed_dim, w, cfg.attn_pooler_heads, cfg.attn_pooler_queries,
                                               cfg.norm_eps)
            pool_dim = embed_dim
        self.ln_post = LayerNormFp32(pool_dim, eps=cfg.norm_eps)
        self.proj = nn.Parameter(scale * torch.randn(pool_dim, embed_dim))

    def _global_pool(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 1:].mean(1) if self.cfg.pool_type == "avg" else x[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        if self.attn_pool is not None:  # open_clip's CoCa: pool, then ln_post, then the first query
            pooled = self._global_pool(self.ln_post(self.attn_pool(x)))
        elif self.cfg.final_ln_after_pool:
            pooled = self.ln_post(self._global_pool(x))
        else:
            pooled = self._global_pool(self.ln_post(x))
        return pooled @ self.proj


class TextTower(nn.Module):
    """CLIP text transformer. In CLIP's layout its parameters sit at the top level of the state dict (no
    prefix); open_clip's custom-text models and CoCa keep them under `text.`."""

    def __init__(self, cfg: TextCfg, embed_dim: int, quick_gelu: bool) -> None:
        super().__init__()
        self.cfg = cfg
        positions = cfg.context_length + (1 if cfg.embed_cls else 0)
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.cls_emb = nn.Parameter(torch.zeros(cfg.width)) if cfg.embed_cls else None
        self.positional_embedding = nn.Parameter(torch.empty(positions, cfg.width).normal_(std=0.01))
        self.transformer = Transformer(cfg.width, cfg.layers, cfg.heads, cfg.mlp_ratio, quick_gelu, cfg.ls_init_value,
                                       cfg.norm_eps, cfg.act_approx)
        self.ln_final = LayerNormFp32(cfg.width, eps=cfg.norm_eps)
        self.text_projection: nn.Module | nn.Parameter | None = None
        if cfg.proj_type == "none":
            self.text_projection = None
        elif cfg.proj_bias:
            self.text_projection = nn.Linear(cfg.width, embed_dim)
        else:
            self.text_projection = nn.Parameter(torch.empty(cfg.width, embed_dim).normal_(std=cfg.width ** -0.5))
        self.attn_mask: torch.Tensor
        mask = torch.full((positions, positions), float("-inf")).triu_(1)
        self.register_buffer("attn_mask", mask, persistent=False)

    def _mask(self, tokens: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor | None:
        causal = None if self.cfg.no_causal_mask else self.attn_mask[:n, :n].to(dtype)
        if self.cls_emb is None:
            return causal
        # open_clip's CoCa padding mask, kept as it is (its `correct_cls_mask` is off in every config): the
        # class position's "always valid" flag is put first, so key j is masked when token j-1 is padding
        valid = torch.cat([torch.ones_like(tokens[:, :1], dtype=torch.bool), tokens != self.cfg.pad_id], 1)
        pad = torch.zeros(valid.shape, dtype=dtype, device=tokens.device).masked_fill_(~valid, float("-inf"))
        mask = pad[:, None, :].expand(-1, n, -1)
        mask = mask if causal is None else mask + causal
        return mask.repeat_interleave(self.cfg.heads, 0)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens)
        if self.cls_emb is not None:
            x = torch.cat([x, self.cls_emb.to(x.dtype).expand(x.shape[0], 1, -1)], dim=1)
        n = x.shape[1]
        x = self.transformer(x + self.positional_embedding[:n].to(x.dtype), self._mask(tokens, n, x.dtype))
        pooled: torch.Tensor
        if self.cls_emb is not None:
            pooled = self.ln_final(x[:, -1])
        else:
            x = self.ln_final(x)
            if self.cfg.pool_type == "argmax":
                pooled = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]
            elif self.cfg.pool_type == "eos":
                pooled = x[torch.arange(x.shape[0]), torch.eq(tokens, int(self.cfg.eos_id or 0)).int().argmax(dim=-1)]
            elif self.cfg.pool_type == "first":
                pooled = x[:, 0]
            else:
                pooled = x[:, -1]
        proj = self.text_projection
        if proj is None:
            return pooled
        if isinstance(proj, nn.Linear):
            return proj(pooled)
        assert isinstance(proj, torch.Tensor)
        return pooled @ proj


def pick(cls: Any, d: dict[str, Any]) -> Any:
    return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
