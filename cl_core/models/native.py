"""The native checkpoint: a folder with clens_config.json (towers, preprocessing, embed_dim) and
model.safetensors (keys `towers.<modality>.*` and `logit_scale`). Any number of modalities.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as st_save
from torch import nn

from cl_core.atomic import atomic_write, write_text_atomic
from cl_core.choices import OBJECTIVE_NAMES
from cl_core.errors import CheckpointError
from cl_core.formats import NATIVE_CONFIG, NATIVE_WEIGHTS
from cl_core.modality import Item, Modality
from cl_core.models.base import BaseModel, ItemPreparer, Prepared
from cl_core.models.clip_tokenizer import get_clip_tokenizer
from cl_core.models.config_limits import read_config
from cl_core.models.keys import key_mismatch
from cl_core.models.preprocess import (
    AudioItemPreparer,
    AudioPreprocess,
    ImageItemPreparer,
    ImagePreprocess,
    StackItemPreparer,
    StackPreprocess,
    prepare_each,
)
from cl_core.models.safety import load_safetensors
from cl_core.models.towers import TowerSpec, build_tower, frozen_keys

FORMAT_TAG = "contrastive-lens"


class NativeNet(nn.Module):
    """All towers of a native model in one module; weights saved with this module's state dict."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.embed_dim = int(config["embed_dim"])
        self.towers = nn.ModuleDict()
        self.specs: dict[str, TowerSpec] = {}
        for name, tcfg in config["towers"].items():
            modality = Modality.parse(name)
            tower, spec = build_tower(modality, tcfg, self.embed_dim)
            self.towers[modality.value] = tower
            self.specs[modality.value] = spec
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """What a native checkpoint stores: everything but frozen encoders loaded from their packages."""
        skip = frozen_keys(self)
        return {k: v for k, v in self.state_dict().items() if not k.startswith(skip)}


def validate_config(config: Any, where: str) -> dict[str, Any]:
    if not isinstance(config, dict) or config.get("format") != FORMAT_TAG:
        raise CheckpointError(f"{where}: not a Contrastive Lens config (needs \"format\": \"{FORMAT_TAG}\")")
    if not isinstance(config.get("embed_dim"), int) or config["embed_dim"] <= 0:
        raise CheckpointError(f"{where}: embed_dim must be a positive integer")
    towers = config.get("towers")
    if not isinstance(towers, dict) or not towers:
        raise CheckpointError(f"{where}: needs at least one tower under \"towers\"")
    for name, tcfg in towers.items():
        try:
            Modality.parse(name)
        except ValueError as exc:
            raise CheckpointError(f"{where}: {exc}") from None
        if not isinstance(tcfg, dict) or "arch" not in tcfg:
            raise CheckpointError(f"{where}: tower {name!r} needs an \"arch\"")
    return config


class NativeModel(BaseModel):
    net: NativeNet
    config: dict[str, Any]
    image_pre: dict[Modality, ImagePreprocess]
    stack_pre: StackPreprocess | None = None
    audio_pre: AudioPreprocess | None = None

    def prepare(self, modality: Modality, items: list[Item]) -> Prepared:
        preparer = self.item_preparer(modality)
        if preparer is not None:
            return prepare_each(preparer, items)
        texts = [str(it.data) for it in items]
        tokenize = getattr(self.net.towers[Modality.TEXT.value], "tokenize", None)
        if callable(tokenize):  # towers that bring their own tokenizer (frozen sentence encoders)
            return Prepared(tokenize(texts))
        ctx = int(self.config["towers"]["text"].get("context_length", 77))
        return Prepared({"tokens": get_clip_tokenizer(ctx)(texts)})

    def item_preparer(self, modality: Modality) -> ItemPreparer | None:
        if modality is Modality.IMAGE:
            return ImageItemPreparer(self.image_pre[modality])
        if modality is Modality.MULTICHANNEL and self.stack_pre is not None:
            return StackItemPreparer(self.stack_pre)
        if modality is Modality.AUDIO and self.audio_pre is not None:
            return AudioItemPreparer(self.audio_pre)
        return None

    def forward(self, modality: Modality, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        tower = self.net.towers[modality.value]
        if modality is Modality.AUDIO:
            assert self.audio_pre is not None
            return tower(self.audio_pre.log_mel(inputs["waves"]))
        if "tokens" in inputs or "pixels" in inputs:
            return tower(next(iter(inputs.values())))
        return tower(**inputs)

    def torch_modules(self) -> list[nn.Module]:
        return [self.net]

    def preprocessing(self) -> dict[str, Any]:
        out = {name: dict(t.get("preprocess", {})) for name, t in self.config["towers"].items()}
        if "text" in out and self.config["towers"]["text"]["arch"] == "sentence":
            t = self.config["towers"]["text"]
            out["text"] = {"encoder": t.get("encoder", "all-MiniLM-L6-v2"), "max_length": t.get("max_length", 64)}
        elif "text" in out:
            out["text"] = {"tokenizer": "clip-bpe", "context_length": int(self.config["towers"]["text"].get(
                "context_length", 77))}
        return out


def from_config(config: dict[str, Any], net: NativeNet, source: Path, device: torch.device) -> NativeModel:
    mods = tuple(Modality.parse(n) for n in config["towers"])
    model = NativeModel(name=str(config.get("name", source.name)), format="native", source=source,
                        modalities=mods, embed_dim=int(config["embed_dim"]), device=torch.device("cpu"),
                        logit_scale=float(net.logit_scale.detach().exp()),
                        batch_sizes={m: 64 for m in mods})
    model.net = net.eval()
    model.config = config
    recorded = config.get("objective")
    model.objective = recorded if isinstance(recorded, str) and recorded in OBJECTIVE_NAMES else None
    model.image_pre = {}
    for name, tcfg in config["towers"].items():
        m = Modality.parse(name)
        pre = tcfg.get("preprocess", {})
        try:
            if m is Modality.IMAGE:
                model.image_pre[m] = ImagePreprocess.from_dict(pre)
            elif m is Modality.MULTICHANNEL:
                model.stack_pre = StackPreprocess.from_dict({"in_channels": tcfg.get("in_channels", 3), **pre})
            elif m is Modality.AUDIO:
                model.audio_pre = AudioPreprocess.from_dict(pre)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: {name} tower preprocessing: {exc}") from None
    return model.to(device)  # type: ignore[return-value]


def load_native(folder: Path, device: torch.device) -> NativeModel:
    cfg_path = folder / NATIVE_CONFIG
    config = read_config(cfg_path)
    validate_config(config, str(cfg_path))
    weights = folder / NATIVE_WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{folder}: {NATIVE_WEIGHTS} is missing (native weights are safetensors only)")
    sd = load_safetensors(weights)
    net = NativeNet(config)
    problem = key_mismatch(net.checkpoint_state(), sd)
    if problem:
        raise CheckpointError(f"{weights}: weights do not fit {NATIVE_CONFIG}: {problem}")
    net.load_state_dict(sd, strict=False)  # frozen encoders came from their own package
    return from_config(config, net, folder, device)


def save_native(folder: Path, config: dict[str, Any], net: NativeNet) -> None:
    """Write weights then config, each atomically; the config last, so a reader never sees new config + old weights."""
    validate_config(config, str(folder / NATIVE_CONFIG))
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.checkpoint_state().items()}
    with atomic_write(folder / NATIVE_WEIGHTS) as fh:
        fh.write(st_save(tensors, metadata={"format": FORMAT_TAG}))
    write_text_atomic(folder / NATIVE_CONFIG, json.dumps(config, indent=2))
