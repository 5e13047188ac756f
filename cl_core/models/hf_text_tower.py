"""open_clip's Hugging Face text towers (`text_cfg.hf_model_name`, e.g. BiomedCLIP's PubMedBERT): the
encoder is transformers' own class built from the named model's config.json (weights come from the
open_clip checkpoint, never from the hub), followed by open_clip's pooler and projection; the tokenizer
is the named tokenizer with open_clip's text cleaning, padding to the context length.

The named config and tokenizer are found as a folder (absolute, or relative to the checkpoint) or as a hub
id in the user's Hugging Face cache (fetched there when online: configs and tokenizer files only).
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cl_core.errors import CheckpointError
from cl_core.models.clip_tokenizer import basic_clean
from cl_core.models.hub import CONFIG_FILES, hub_id, resolve

ENCODERS = ("bert", "roberta", "xlm-roberta")  # open_clip's encoder-only text towers with a pooling layer option
POOLERS = ("mean_pooler", "max_pooler", "cls_pooler", "cls_last_hidden_state_pooler")


def find_named(name: str, beside: Path) -> Path:
    """The folder of a config/tokenizer named in an open_clip config: a local folder, else a hub id."""
    for candidate in (Path(name).expanduser(), beside / name):
        if candidate.is_dir():
            return candidate
    if hub_id(name) is None:
        raise CheckpointError(f"{beside}: its config names {name!r}, which is neither a folder nor a hub id")
    return resolve(name, files=CONFIG_FILES)


class HFTextTower(nn.Module):
    def __init__(self, folder: Path, text_cfg: dict[str, Any], embed_dim: int) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        from cl_core.models.hf import quiet_transformers, read_hf_config

        quiet_transformers()
        read_hf_config(folder)  # refuses auto_map (remote code) before transformers reads it
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        if config.model_type not in ENCODERS:
            raise CheckpointError(f"{folder}: open_clip text tower of type {config.model_type!r} is not supported "
                                  f"(supported: {', '.join(ENCODERS)})")
        for key, value in (text_cfg.get("hf_model_config") or {}).items():
            setattr(config, key, value)
        self.pooler_type = str(text_cfg.get("hf_pooler_type", "mean_pooler"))
        if self.pooler_type not in POOLERS:
            raise CheckpointError(f"open_clip text pooler {self.pooler_type!r} is not supported")
        self.pad_id = int(config.pad_token_id if config.pad_token_id is not None else 0)
        self.transformer = AutoModel.from_config(config, add_pooling_layer=self.pooler_type == "cls_pooler")
        width = int(config.hidden_size)
        proj = text_cfg.get("hf_proj_type", "mlp")
        if proj == "linear":
            self.proj: nn.Module = nn.Linear(width, embed_dim, bias=False)
        elif proj == "mlp":
            hidden = (width + embed_dim) // 2
            self.proj = nn.Sequential(nn.Linear(width, hidden, bias=False), nn.GELU(),
                                      nn.Linear(hidden, embed_dim, bias=False))
        elif proj is None and width == embed_dim:
            self.proj = nn.Identity()
        else:
            raise CheckpointError(f"open_clip text projection {proj!r} is not supported")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != self.pad_id).long()
        out = self.transformer(input_ids=tokens, attention_mask=mask)
        hidden = out.last_hidden_state
        if self.pooler_type == "mean_pooler":
            pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(-1, keepdim=True)
        elif self.pooler_type == "max_pooler":
            pooled = hidden.masked_fill(~mask.bool().unsqueeze(-1), -torch.inf).amax(1)
        elif self.pooler_type == "cls_pooler" and getattr(out, "pooler_output", None) is not None:
            pooled = out.pooler_output
        else:
            pooled = hidden[:, 0]
        return self.proj(pooled)


def _whitespace(text: str) -> str:
    return " ".join(text.split()).strip()


_PUNCT = str.maketrans("", "", string.punctuation)
CLEANERS = {
    "whitespace": lambda t: _whitespace(basic_clean(t)),
    "lower": lambda t: _whitespace(basic_clean(t)).lower(),
    "canonicalize": lambda t: " ".join(basic_clean(t).replace("_", " ").translate(_PUNCT).lower().split()).strip(),
    "whitespace_underscore": lambda t: _whitespace(basic_clean(t).replace("_", " ")),
}


class HFTextTokenizer:
    """open_clip's HFTokenizer: clean, then pad/truncate to the context length (right-padded)."""

    def __init__(self, folder: Path, context_length: int, kwargs: dict[str, Any] | None) -> None:
        from cl_core.models.hf import _load_part

        kwargs = dict(kwargs or {})
        clean = kwargs.pop("clean", "whitespace")
        if clean not in CLEANERS:
            raise CheckpointError(f"open_clip tokenizer cleaning {clean!r} is not supported")
        self.strip_sep = bool(kwargs.pop("strip_sep_token", False))
        if kwargs:
            raise CheckpointError(f"open_clip tokenizer options not supported: {', '.join(sorted(kwargs))}")
        self.clean = CLEANERS[clean]
        self.context_length = context_length
        self.tokenizer = _load_part("AutoTokenizer", folder)
        if self.tokenizer is None:
            raise CheckpointError(f"{folder}: no tokenizer could be read there")
        self.tokenizer.padding_side = "right"

    def __call__(self, texts: list[str]) -> torch.Tensor:
        ids: torch.Tensor = self.tokenizer([self.clean(t) for t in texts], max_length=self.context_length,
                                           padding="max_length", truncation=True, return_tensors="pt").input_ids
        if self.strip_sep:
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
            ids = torch.where(ids == self.tokenizer.sep_token_id, torch.full_like(ids, pad), ids)
        return ids
