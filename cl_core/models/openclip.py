"""open_clip and OpenAI CLIP checkpoints, run on our own towers (`openclip_build`), no open_clip install.

Layouts: the Hugging Face hub layout of open_clip models (open_clip_config.json + open_clip_model.safetensors
or open_clip_pytorch_model.bin: QuiltNet, RemoteCLIP, BiomedCLIP, open_clip's SigLIP and CoCa, ...), and single
state-dict files in OpenAI/open_clip key layout (.safetensors, or .pt/.bin opened weights-only) with their
architecture named (`--arch`) or given by a config beside them. Text is tokenized as open_clip does: CLIP's BPE,
or the Hugging Face tokenizer the config names (`hf_tokenizer_name`) with open_clip's cleaning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cl_core.atomic import write_text_atomic
from cl_core.errors import ArchitectureNeeded, CheckpointError
from cl_core.formats import OPENCLIP_CONFIG, OPENCLIP_WEIGHTS
from cl_core.hashing import file_sha256
from cl_core.modality import Item, Modality
from cl_core.models.archs import OPENAI_RELEASES, arch_config
from cl_core.models.base import BaseModel, ItemPreparer, Prepared
from cl_core.models.clip_tokenizer import get_clip_tokenizer
from cl_core.models.config_limits import read_config
from cl_core.models.openclip_build import ClipModel, check_clip_keys
from cl_core.models.preprocess import ImageItemPreparer, ImagePreprocess, prepare_each
from cl_core.models.safety import load_weights


class OpenClipModel(BaseModel):
    clip: ClipModel
    image_pre: ImagePreprocess
    tokenizer: Callable[[list[str]], torch.Tensor]
    tokenizer_name: str

    def prepare(self, modality: Modality, items: list[Item]) -> Prepared:
        if modality is Modality.IMAGE:
            return prepare_each(ImageItemPreparer(self.image_pre), items)
        return Prepared({"tokens": self.tokenizer([str(it.data) for it in items])})

    def item_preparer(self, modality: Modality) -> ItemPreparer | None:
        return ImageItemPreparer(self.image_pre) if modality is Modality.IMAGE else None

    def forward(self, modality: Modality, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if modality is Modality.IMAGE:
            return self.clip.visual(inputs["pixels"])
        return self.clip.text(inputs["tokens"])

    def torch_modules(self) -> list[torch.nn.Module]:
        return [self.clip]

    def preprocessing(self) -> dict[str, Any]:
        return {"image": self.image_pre.to_dict(),
                "text": {"tokenizer": self.tokenizer_name, "context_length": self.clip.text_cfg.context_length}}


def _tokenizer(model_cfg: dict[str, Any], named: Callable[[str], Path]) -> tuple[Callable[[list[str]], torch.Tensor],
                                                                                str]:
    text = model_cfg.get("text_cfg", {})
    context = int(text.get("context_length", 77))
    name = text.get("hf_tokenizer_name")
    if name:
        from cl_core.models.hf_text_tower import HFTextTokenizer

        return HFTextTokenizer(named(str(name)), context, text.get("tokenizer_kwargs")), str(name)
    return get_clip_tokenizer(context), "clip-bpe"


def _build(name: str, fmt: str, source: Path, model_cfg: dict[str, Any], pre: dict[str, Any],
           sd: dict[str, torch.Tensor], device: torch.device) -> OpenClipModel:
    folder = source if source.is_dir() else source.parent

    def named(spec: str) -> Path:
        from cl_core.models.hf_text_tower import find_named

        return find_named(spec, folder)

    clip = ClipModel(model_cfg, {k: v.shape for k, v in sd.items()}, named)
    clip.load_openclip_state_dict(sd, str(source))
    clip.eval()
    tokenizer, tokenizer_name = _tokenizer(model_cfg, named)
    image_size = clip.image_size
    image_pre = ImagePreprocess.from_dict({"size": image_size, **pre})
    bias = float(clip.logit_bias.detach()) if clip.logit_bias is not None else None
    model = OpenClipModel(name=name, format=fmt, source=source, modalities=(Modality.IMAGE, Modality.TEXT),
                          embed_dim=clip.embed_dim, device=torch.device("cpu"),
                          logit_scale=float(clip.logit_scale.detach().exp()), logit_bias=bias,
                          batch_sizes={Modality.IMAGE: 64, Modality.TEXT: 256})
    model.clip = clip
    model.image_pre = image_pre
    model.tokenizer = tokenizer
    model.tokenizer_name = tokenizer_name
    return model.to(device)  # type: ignore[return-value]


def load_openclip_folder(folder: Path, device: torch.device, allow_pickle: bool = False) -> OpenClipModel:
    cfg_path = folder / OPENCLIP_CONFIG
    cfg = read_config(cfg_path, "open_clip config")
    model_cfg = cfg.get("model_cfg")
    if not isinstance(model_cfg, dict) or "embed_dim" not in model_cfg:
        raise CheckpointError(f"{cfg_path}: has no model_cfg with embed_dim")
    weights = next((folder / w for w in OPENCLIP_WEIGHTS if (folder / w).is_file()), None)
    if weights is None:
        raise CheckpointError(f"{folder}: open_clip config found but no weights ({' or '.join(OPENCLIP_WEIGHTS)})")
    sd = load_weights(weights, allow_pickle=allow_pickle)
    pre = cfg.get("preprocess_cfg", {}) or {}
    return _build(folder.name, "open_clip", folder, model_cfg, pre, sd, device)


def load_openai_file(path: Path, device: torch.device, allow_pickle: bool = False,
                     arch: str | None = None) -> OpenClipModel:
    """A single CLIP state dict in OpenAI/open_clip layout. Its keys give the sizes but not the activation
    (GELU or QuickGELU) nor the heads' width, so these are never guessed: they come from an open_clip config
    beside the file (NAME.json), from `arch` (an open_clip name), which is then remembered there, or from the
    file's sha256 when it is one of OpenAI's released files."""
    side_cfg = path.with_name(path.stem + ".json")
    sd = load_weights(path, allow_pickle=allow_pickle)  # first: an unsafe or unreadable file is refused as such
    check_clip_keys(sd)  # the keys a CLIP state dict must have, checked by name
    if not side_cfg.is_file() and arch is None:
        arch = OPENAI_RELEASES.get(file_sha256(path))
    if not side_cfg.is_file() and arch is None:
        raise ArchitectureNeeded(str(path), (
            f"{path}: a lone state dict does not say its activation (GELU or QuickGELU) or its attention heads; "
            "name its architecture: --arch ViT-B-32 (open_clip's names; add -quickgelu for weights trained "
            f"as OpenAI's), or put its open_clip config beside it as {side_cfg.name}"))
    pre: dict[str, Any] = {}
    if arch is not None:
        model_cfg = arch_config(arch)
    else:
        extra = read_config(side_cfg, "open_clip config")
        model_cfg = extra.get("model_cfg", extra)
        pre = extra.get("preprocess_cfg", {}) or {}
    model = _build(path.stem, "openai_clip", path, model_cfg, pre, sd, device)
    if arch is not None and not side_cfg.exists():
        remember_arch(side_cfg, arch, model_cfg)
    return model


def remember_arch(side_cfg: Path, arch: str, model_cfg: dict[str, Any]) -> None:
    """Write the named architecture beside the weights, so the next open needs no question. A read-only
    folder is not an error: the name is asked for again next time."""
    try:
        write_text_atomic(side_cfg, json.dumps({"architecture": arch, "model_cfg": model_cfg}, indent=2))
    except OSError:
        pass


def looks_like_openai_state_dict(keys: set[str]) -> bool:
    return {"visual.conv1.weight", "token_embedding.weight", "text_projection"} <= keys
