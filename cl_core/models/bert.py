"""A BERT encoder in plain torch for the frozen sentence encoders (all-MiniLM-L6-v2), with the module names
of the Hugging Face BertModel so its safetensors load as they are, and its fast tokenizer read straight from
tokenizer.json with the `tokenizers` library. Importing transformers and building its BertModel took ~2.3 s
of the demo's start-up; this takes a tenth of that and gives the same token states (tested against
transformers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cl_core.errors import CheckpointError
from cl_core.models.config_limits import read_config

IGNORED_KEYS = ("embeddings.position_ids", "pooler.")  # a buffer and the unused [CLS] pooler


class Embeddings(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=c.get("pad_token_id", 0))
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])  # noqa: N815 - HF's name

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
        return self.LayerNorm(x + self.token_type_embeddings.weight[0])


class SelfAttention(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.heads = c["num_attention_heads"]
        self.query, self.key, self.value = (nn.Linear(c["hidden_size"], c["hidden_size"]) for _ in range(3))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)),
                                             attn_mask=keep)
        return out.transpose(1, 2).reshape(b, t, d)


class DenseNorm(nn.Module):
    """dense -> (+ residual) -> LayerNorm, as BertSelfOutput and BertOutput."""

    def __init__(self, d_in: int, d_out: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)  # noqa: N815 - HF's name

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.self = SelfAttention(c)
        self.output = DenseNorm(c["hidden_size"], c["hidden_size"], c["layer_norm_eps"])

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, keep), x)


class Intermediate(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # exact (erf) GELU, BERT's "gelu"


class Layer(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = DenseNorm(c["intermediate_size"], c["hidden_size"], c["layer_norm_eps"])

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, keep)
        return self.output(self.intermediate(x), x)


class Encoder(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))


class BertEncoder(nn.Module):
    """Token states [B, T, H] of a BERT (no pooler): what sentence-transformers mean-pools."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.hidden_size = int(config["hidden_size"])
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        keep = attention_mask.bool()[:, None, None, :]  # [B, 1, 1, T]: which keys each query may attend to
        x = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return x


REQUIRED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "max_position_embeddings", "type_vocab_size")


def load_bert(folder: Path) -> BertEncoder:
    """The encoder of a BERT folder (config.json + model.safetensors), weights checked to be all there."""
    from safetensors.torch import load_file

    config = read_config(folder / "config.json")
    if config.get("model_type", "bert") != "bert" or any(not isinstance(config.get(k), int) for k in REQUIRED):
        raise CheckpointError(f"{folder / 'config.json'}: not a BERT configuration")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise CheckpointError(f"{folder / 'config.json'}: hidden_size is not a multiple of the heads")
    config.setdefault("layer_norm_eps", 1e-12)
    if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(f"{folder / 'config.json'}: only BERTs with GELU and absolute positions are read")
    model = BertEncoder(config)  # not on the meta device: that imports torch's reference ops (~1.3 s)
    weights = {k.removeprefix("bert."): v for k, v in load_file(str(folder / "model.safetensors")).items()}
    weights = {k: v for k, v in weights.items() if not k.startswith(IGNORED_KEYS)}
    missing, unexpected = set(model.state_dict()) - set(weights), set(weights) - set(model.state_dict())
    if missing or unexpected:
        raise CheckpointError(f"{folder / 'model.safetensors'}: not this BERT's weights (missing "
                              f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    model.load_state_dict(weights)
    return model.eval()


class WordPiece:
    """The encoder's fast tokenizer (tokenizer.json): padded to the batch's longest, cut at max_length."""

    def __init__(self, folder: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        path = folder / "tokenizer.json"
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001 - the Rust library raises its own exception type
            raise CheckpointError(f"{path}: not a readable tokenizer: {exc}") from None
        pad = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding(pad_id=0 if pad is None else pad, pad_token="[PAD]")

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer.encode_batch(texts)
        return {"input_ids": torch.tensor([e.ids for e in batch], dtype=torch.long),
                "attention_mask": torch.tensor([e.attention_mask for e in batch], dtype=torch.long)}

