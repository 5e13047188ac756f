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


def _rn(embed: int, image: int, layers: list[int], v_width: int, t_width: int, t_heads: int) -> dict[str, Any]:
    """OpenAI's ModifiedResNet CLIPs (RN50 ...): attention-pool heads are width * 32 / 64."""
    return {"embed_dim": embed,
            "vision_cfg": {"image_size": image, "layers": layers, "width": v_width, "patch_size": None},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": t_width, "heads": t_heads, "layers": 12}}


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
    "RN50": _rn(1024, 224, [3, 4, 6, 3], 64, 512, 8),
    "RN101": _rn(512, 224, [3, 4, 23, 3], 64, 512, 8),
    "RN50x4": _rn(640, 288, [4, 6, 10, 6], 80, 640, 10),
    "RN50x16": _rn(768, 384, [6, 8, 18, 8], 96, 768, 12),
    "RN50x64": _rn(1024, 448, [3, 15, 36, 10], 128, 1024, 16),
}

# "-quickgelu": weights trained with QuickGELU, as OpenAI's (and open_clip's fits of OpenAI's recipe)
ARCHS: dict[str, dict[str, Any]] = {
    **{name: {**cfg, "quick_gelu": False} for name, cfg in _BASE.items()},
    **{f"{name}-quickgelu": {**cfg, "quick_gelu": True} for name, cfg in _BASE.items()},
}


assert tuple(sorted(ARCHS)) == ARCH_NAMES, "cl_core.choices.ARCH_NAMES and this table must name the same"


# OpenAI's released CLIP files (the `clip` package's downloads) by sha256, as published in their URLs;
# all were trained with QuickGELU. A file with one of these digests needs no --arch.
OPENAI_RELEASES = {
    "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762": "RN50-quickgelu",
    "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599": "RN101-quickgelu",
    "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd": "RN50x4-quickgelu",
    "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa": "RN50x16-quickgelu",
    "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c": "RN50x64-quickgelu",
    "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af": "ViT-B-32-quickgelu",
    "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f": "ViT-B-16-quickgelu",
    "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836": "ViT-L-14-quickgelu",
    "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02": "ViT-L-14-336-quickgelu",
}


def arch_config(name: str) -> dict[str, Any]:
    if name not in ARCHS:
        from cl_core.errors import CheckpointError

        raise CheckpointError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHS))}")
    return ARCHS[name]
