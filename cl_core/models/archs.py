"""open_clip's architecture names for lone CLIP state dicts, whose keys do not say their activation
(GELU or QuickGELU) nor the attention heads' width. Values as in open_clip's model configs; the weights'
shapes are still checked key by key when loaded, so a wrong name fails with the mismatch named."""

from __future__ import annotations

from typing import Any

from cl_core.choices import ARCH_NAMES


def _vit(embed: int, image: int, patch: int, v_layers: int, v_width: int, t_width: int, t_heads: int,
         t_layers: int, head_width: int = 64, mlp_ratio: float = 4.0) -> dict[str, Any]:
    return {"embed_dim": embed,
            "vision_cfg": {"image_size": image, "patch_size": patch, "layers": v_layers, "width": v_width,
                           "head_width": head_width, "mlp_ratio": mlp_ratio},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": t_width, "heads": t_heads,
                         "layers": t_layers}}


_BASE = {
    "ViT-B-32": _vit(512, 224, 32, 12, 768, 512, 8, 12),
    "ViT-B-32-256": _vit(512, 256, 32, 12, 768, 512, 8, 12),
    "ViT-B-16": _vit(512, 224, 16, 12, 768, 512, 8, 12),
    "ViT-B-16-plus-240": _vit(640, 240, 16, 12, 896, 640, 10, 12),
    "ViT-L-14": _vit(768, 224, 14, 24, 1024, 768, 12, 12),
    "ViT-L-14-336": _vit(768, 336, 14, 24, 1024, 768, 12, 12),
    "ViT-H-14": _vit(1024, 224, 14, 32, 1280, 1024, 16, 24, head_width=80),
    "ViT-g-14": _vit(1024, 224, 14, 40, 1408, 1024, 16, 24, head_width=88, mlp_ratio=4.3637),
    "ViT-bigG-14": _vit(1280, 224, 14, 48, 1664, 1280, 20, 32, head_width=104, mlp_ratio=4.9231),
}

# "-quickgelu": weights trained with QuickGELU, as OpenAI's (and open_clip's fits of OpenAI's recipe)
ARCHS: dict[str, dict[str, Any]] = {
    **{name: {**cfg, "quick_gelu": False} for name, cfg in _BASE.items()},
    **{f"{name}-quickgelu": {**cfg, "quick_gelu": True} for name, cfg in _BASE.items()},
}


assert tuple(sorted(ARCHS)) == ARCH_NAMES, "cl_core.choices.ARCH_NAMES and this table must name the same"


def arch_config(name: str) -> dict[str, Any]:
    if name not in ARCHS:
        from cl_core.errors import CheckpointError

        raise CheckpointError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHS))}")
    return ARCHS[name]
