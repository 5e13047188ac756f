"""open_clip's model configs built into our towers, with open_clip's parameter names so its state dicts
load key for key: ViT (`clip_arch`), ModifiedResNet (`resnet_tower`) and timm ViTs (`timm_tower`) on the image
side; the CLIP text transformer (incl. CoCa's and SigLIP's variants) or a Hugging Face encoder
(`hf_text_tower`) on the text side. Options none of them implements are refused by name, never ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cl_core.errors import CheckpointError
from cl_core.models.clip_arch import TextCfg, TextTower, VisionCfg, VisionTower, pick
from cl_core.models.keys import key_mismatch
from cl_core.models.resnet_tower import ModifiedResNet

_VISION_UNSUPPORTED = ("patch_dropout", "qk_norm", "scaled_cosine_attn", "scale_heads", "scale_attn_inner",
                       "scale_attn", "scale_fc", "image_seq_len")
_TEXT_UNSUPPORTED = ("qk_norm", "scaled_cosine_attn", "scale_heads", "scale_attn_inner", "scale_attn", "scale_fc",
                     "variable_text", "final_ln_after_pool", "tokenizer_mode")
_OPTIONAL_KEYS = ("num_batches_tracked", "position_ids", "attn_mask")  # buffers some savers keep, some drop


def _kwargs(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    """open_clip's norm_kwargs/act_kwargs, as our towers' norm_eps/act_approx."""
    out: dict[str, Any] = {}
    norm = dict(cfg.get("norm_kwargs") or {})
    act = dict(cfg.get("act_kwargs") or {})
    if "eps" in norm:
        out["norm_eps"] = float(norm.pop("eps"))
    if act.get("approximate") in ("none", "tanh"):
        out["act_approx"] = act.pop("approximate")
    if norm or act:
        raise CheckpointError(f"{where}: norm/act options not supported: {', '.join(sorted({**norm, **act}))}")
    return out


def check_supported(model_cfg: dict[str, Any]) -> None:
    vision = model_cfg.get("vision_cfg", {})
    text = model_cfg.get("text_cfg", {})
    problems = [f"vision_cfg.{k}" for k in _VISION_UNSUPPORTED if vision.get(k)]
    problems += [f"text_cfg.{k}" for k in _TEXT_UNSUPPORTED if text.get(k)]
    if text.get("text_arch", "clip") != "clip":
        problems.append(f"text_cfg.text_arch={text['text_arch']!r}")
    if text.get("tokenizer_type") and text.get("tokenizer_type") not in ("", "clip"):
        problems.append(f"text_cfg.tokenizer_type={text['tokenizer_type']!r}")
    if vision.get("pos_embed_type", "learnable") != "learnable":
        problems.append(f"vision_cfg.pos_embed_type={vision['pos_embed_type']!r}")
    if isinstance(vision.get("attentional_pool"), str):
        problems.append(f"vision_cfg.attentional_pool={vision['attentional_pool']!r}")
    if vision.get("pool_type", "tok") not in ("tok", "avg"):
        problems.append(f"vision_cfg.pool_type={vision['pool_type']!r}")
    if text.get("pool_type", "argmax") not in ("argmax", "last", "first", "eos"):
        problems.append(f"text_cfg.pool_type={text['pool_type']!r}")
    if text.get("pool_type") == "eos" and text.get("eos_id") is None:
        problems.append("text_cfg.pool_type='eos' without eos_id")
    if text.get("proj_type", "linear") not in ("linear", "none"):
        problems.append(f"text_cfg.proj_type={text['proj_type']!r}")
    if problems:
        raise CheckpointError("unsupported open_clip architecture options: " + ", ".join(problems))


def text_in_own_module(model_cfg: dict[str, Any]) -> bool:
    """open_clip's CustomTextCLIP and CoCa keep text parameters under `text.`; CLIP puts them at the top."""
    text = model_cfg.get("text_cfg", {})
    return bool(model_cfg.get("custom_text") or text.get("hf_model_name") or "multimodal_cfg" in model_cfg)


def _vision(model_cfg: dict[str, Any], embed_dim: int, quick: bool,
            shapes: dict[str, torch.Size]) -> tuple[nn.Module, int]:
    v = dict(model_cfg.get("vision_cfg", {}))
    if v.get("timm_model_name"):
        from cl_core.models.timm_tower import TimmTower

        tower = TimmTower(v, embed_dim, {k[len("visual."):]: s for k, s in shapes.items() if k.startswith("visual.")})
        size = int(v.get("image_size", tower.image_size) if not isinstance(v.get("image_size"), list)
                   else v["image_size"][0])
        if size != tower.image_size:
            raise CheckpointError(f"timm image tower: config image_size {size} but weights are for {tower.image_size}")
        return tower, tower.image_size
    size = v.get("image_size", 224)
    size = int(size[0] if isinstance(size, list | tuple) else size)
    if isinstance(v.get("layers"), list | tuple):
        layers = [int(n) for n in v["layers"]]
        width = int(v.get("width", 64))
        if len(layers) != 4 or size % 32:
            raise CheckpointError(f"ModifiedResNet needs 4 stages and an image size divisible by 32 "
                                  f"(got {layers}, {size})")
        heads = width * 32 // int(v.get("head_width", 64))
        return ModifiedResNet(layers, embed_dim, heads, size, width), size
    cfg = pick(VisionCfg, {**v, **_kwargs(v, "vision_cfg")})
    return VisionTower(cfg, embed_dim, quick), size


def _text(model_cfg: dict[str, Any], embed_dim: int, quick: bool, named: Callable[[str], Path]) -> nn.Module:
    t = dict(model_cfg.get("text_cfg", {}))
    if t.get("hf_model_name"):
        from cl_core.models.hf_text_tower import HFTextTower

        return HFTextTower(named(str(t["hf_model_name"])), t, embed_dim)
    return TextTower(pick(TextCfg, {**t, **_kwargs(t, "text_cfg")}), embed_dim, quick)


def _no_names(name: str) -> Path:
    raise CheckpointError(f"the config names {name!r} but no folder to look for it was given")


class ClipModel(nn.Module):
    """An open_clip model's two towers and its logit scale/bias, in open_clip's state-dict layout."""

    def __init__(self, model_cfg: dict[str, Any], shapes: dict[str, torch.Size] | None = None,
                 named: Callable[[str], Path] = _no_names) -> None:
        super().__init__()
        check_supported(model_cfg)
        embed_dim = int(model_cfg["embed_dim"])
        quick = bool(model_cfg.get("quick_gelu", False))
        self.embed_dim = embed_dim
        self.text_prefixed = text_in_own_module(model_cfg)
        self.visual, self.image_size = _vision(model_cfg, embed_dim, quick, shapes or {})
        self.text = _text(model_cfg, embed_dim, quick, named)
        self.text_cfg = pick(TextCfg, model_cfg.get("text_cfg", {}))
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))
        self.logit_bias = nn.Parameter(torch.zeros(())) if model_cfg.get("init_logit_bias") is not None else None

    def state_dict_keys_map(self) -> dict[str, str]:
        """Our module names -> open_clip names (in CLIP's layout text parameters carry no prefix)."""
        strip = not self.text_prefixed
        return {k: k[len("text."):] if strip and k.startswith("text.") else k for k in self.state_dict()}

    def load_openclip_state_dict(self, sd: dict[str, torch.Tensor], source: str) -> None:
        def optional(k: str) -> bool:
            return k.rsplit(".", 1)[-1] in _OPTIONAL_KEYS

        mapping = {k: v for k, v in self.state_dict_keys_map().items() if not optional(k)}
        own = self.state_dict()
        given = {k: v for k, v in sd.items()
                 if not optional(k) and not k.startswith("text_decoder.")}  # CoCa's captioning decoder: unused
        expected = {mapping[k]: own[k] for k in mapping}
        problem = key_mismatch(expected, given, ignore_unexpected=("input_resolution", "context_length", "vocab_size"))
        if problem:
            raise CheckpointError(f"{source}: weights do not fit the architecture in its config: {problem}")
        self.load_state_dict({k: sd[mapping[k]] for k in mapping}, strict=False)


def check_clip_keys(sd: dict[str, torch.Tensor]) -> None:
    """The keys every OpenAI/open_clip-layout CLIP state dict has (ViT or ModifiedResNet image side)."""
    for key in ("visual.conv1.weight", "token_embedding.weight", "text_projection"):
        if key not in sd:
            raise CheckpointError(f"not an OpenAI/open_clip CLIP state dict: key {key!r} is missing")
