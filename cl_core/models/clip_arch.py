"""The CLIP ViT architecture with open_clip/OpenAI parameter names, so their state dicts load as they are.

Covers OpenAI CLIP and open_clip ViT models (quick-GELU or GELU, layer scale, token or average pooling,
optional ln_pre, argmax/last/first text pooling). Options outside that are refused by name in
`check_supported`, not silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cl_core.errors import CheckpointError
from cl_core.models.keys import key_mismatch


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


class ResidualBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float, quick_gelu: bool, ls_init: float | None) -> None:
        super().__init__()
        self.ln_1 = LayerNormFp32(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ls_1 = LayerScale(width, ls_init) if ls_init is not None else nn.Identity()
        self.ln_2 = LayerNormFp32(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, hidden))
        self.mlp.add_module("gelu", QuickGELU() if quick_gelu else nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(hidden, width))
        self.ls_2 = LayerScale(width, ls_init) if ls_init is not None else nn.Identity()

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.ls_1(self.attn(y, y, y, need_weights=False, attn_mask=attn_mask)[0])
        return x + self.ls_2(self.mlp(self.ln_2(x)))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float, quick_gelu: bool,
                 ls_init: float | None) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            [ResidualBlock(width, heads, mlp_ratio, quick_gelu, ls_init) for _ in range(layers)])

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


_VISION_UNSUPPORTED = ("timm_model_name", "hf_model_name", "attentional_pool", "attn_pooler_queries",
                       "output_tokens", "patch_dropout")
_TEXT_UNSUPPORTED = ("hf_model_name", "hf_tokenizer_name", "embed_cls", "attn_pooler_heads", "output_tokens",
                     "no_causal_mask")


def check_supported(model_cfg: dict[str, Any]) -> None:
    vision = model_cfg.get("vision_cfg", {})
    text = model_cfg.get("text_cfg", {})
    problems = [f"vision_cfg.{k}" for k in _VISION_UNSUPPORTED if vision.get(k)]
    problems += [f"text_cfg.{k}" for k in _TEXT_UNSUPPORTED if text.get(k)]
    if isinstance(vision.get("layers"), list | tuple):
        problems.append("vision_cfg.layers as a list (ResNet towers)")
    if vision.get("pool_type", "tok") not in ("tok", "avg"):
        problems.append(f"vision_cfg.pool_type={vision['pool_type']!r}")
    if text.get("pool_type", "argmax") not in ("argmax", "last", "first"):
        problems.append(f"text_cfg.pool_type={text['pool_type']!r}")
    tok = text.get("tokenizer", text.get("hf_tokenizer_name"))
    if tok and tok not in ("clip", "openai"):
        problems.append(f"text tokenizer {tok!r}")
    if problems:
        raise CheckpointError("unsupported open_clip architecture options: " + ", ".join(problems) +
                              " (supported: ViT image towers with the CLIP BPE text transformer)")


def _pick(cls: Any, d: dict[str, Any]) -> Any:
    return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


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
        self.ln_pre = nn.Identity() if cfg.no_ln_pre else LayerNormFp32(w)
        heads = max(1, w // cfg.head_width)
        self.transformer = Transformer(w, cfg.layers, heads, cfg.mlp_ratio, quick_gelu, cfg.ls_init_value)
        self.ln_post = LayerNormFp32(w)
        self.proj = nn.Parameter(scale * torch.randn(w, embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        if self.cfg.final_ln_after_pool:
            pooled = x[:, 1:].mean(1) if self.cfg.pool_type == "avg" else x[:, 0]
            pooled = self.ln_post(pooled)
        else:
            x = self.ln_post(x)
            pooled = x[:, 1:].mean(1) if self.cfg.pool_type == "avg" else x[:, 0]
        return pooled @ self.proj


class TextTower(nn.Module):
    """CLIP text transformer; parameters sit at the top level of the CLIP state dict (no prefix)."""

    def __init__(self, cfg: TextCfg, embed_dim: int, quick_gelu: bool) -> None:
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.width).normal_(std=0.01))
        self.transformer = Transformer(cfg.width, cfg.layers, cfg.heads, cfg.mlp_ratio, quick_gelu, cfg.ls_init_value)
        self.ln_final = LayerNormFp32(cfg.width)
        if cfg.proj_bias:
            self.text_projection: nn.Module | nn.Parameter = nn.Linear(cfg.width, embed_dim)
        else:
            self.text_projection = nn.Parameter(torch.empty(cfg.width, embed_dim).normal_(std=cfg.width ** -0.5))
        self.attn_mask: torch.Tensor
        mask = torch.full((cfg.context_length, cfg.context_length), float("-inf")).triu_(1)
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:n]
        x = self.transformer(x, self.attn_mask[:n, :n].to(x.dtype))
        x = self.ln_final(x)
        pooled: torch.Tensor
        if self.cfg.pool_type == "argmax":
            pooled = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]
        elif self.cfg.pool_type == "first":
            pooled = x[:, 0]
        else:
            pooled = x[:, -1]
        proj = self.text_projection
        if isinstance(proj, nn.Linear):
            return proj(pooled)
        assert isinstance(proj, torch.Tensor)
        return pooled @ proj


class ClipModel(nn.Module):
    """CLIP with open_clip's state-dict layout: `visual.*`, text parameters at top level, `logit_scale`."""

    def __init__(self, model_cfg: dict[str, Any]) -> None:
        super().__init__()
        check_supported(model_cfg)
        embed_dim = int(model_cfg["embed_dim"])
        quick = bool(model_cfg.get("quick_gelu", False))
        self.embed_dim = embed_dim
        self.vision_cfg = _pick(VisionCfg, model_cfg.get("vision_cfg", {}))
        self.text_cfg = _pick(TextCfg, model_cfg.get("text_cfg", {}))
        self.visual = VisionTower(self.vision_cfg, embed_dim, quick)
        self.text = TextTower(self.text_cfg, embed_dim, quick)
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))
        self.logit_bias = nn.Parameter(torch.zeros(())) if model_cfg.get("init_logit_bias") is not None else None

    def state_dict_keys_map(self) -> dict[str, str]:
        """Our module names -> open_clip names (text tower parameters carry no prefix there)."""
        out = {}
        for k in self.state_dict():
            out[k] = k[len("text."):] if k.startswith("text.") else k
        return out

    def load_openclip_state_dict(self, sd: dict[str, torch.Tensor], source: str) -> None:
        mapping = self.state_dict_keys_map()
        own = self.state_dict()
        expected = {mapping[k]: v for k, v in own.items()}
        problem = key_mismatch(expected, sd, ignore_unexpected=("attn_mask", "input_resolution", "context_length",
                                                                "vocab_size"))
        if problem:
            raise CheckpointError(f"{source}: weights do not fit the CLIP architecture in its config: {problem}")
        self.load_state_dict({k: sd[mapping[k]] for k in own}, strict=True)


def infer_openai_cfg(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Architecture of an OpenAI-layout ViT CLIP state dict, read from tensor shapes (as OpenAI's build_model)."""
    try:
        width = sd["visual.conv1.weight"].shape[0]
        patch = sd["visual.conv1.weight"].shape[-1]
        v_layers = len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")})
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        embed_dim = sd["text_projection"].shape[1]
        ctx = sd["positional_embedding"].shape[0]
        vocab = sd["token_embedding.weight"].shape[0]
        t_width = sd["ln_final.weight"].shape[0]
        t_layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
        v_mlp = sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / width
        t_mlp = sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / t_width
    except KeyError as exc:
        raise CheckpointError(f"not an OpenAI/open_clip ViT CLIP state dict: key {exc} is missing") from None
    return {
        "embed_dim": int(embed_dim),
        "quick_gelu": True,  # OpenAI's released weights were trained with QuickGELU
        "vision_cfg": {"image_size": int(grid * patch), "patch_size": int(patch), "width": int(width),
                       "layers": int(v_layers), "head_width": 64, "mlp_ratio": float(v_mlp)},
        "text_cfg": {"context_length": int(ctx), "vocab_size": int(vocab), "width": int(t_width),
                     "heads": max(1, int(t_width) // 64), "layers": int(t_layers),
                     "mlp_ratio": float(t_mlp)},
    }
