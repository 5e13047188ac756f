"""sentence-transformers text models (a folder with modules.json): a Transformer module, a Pooling module
and optionally Normalize, run with our plain-torch BERT (cl_core.models.bert) and the folder's own
tokenizer.json. Text only: such a model searches texts by texts; cross-modal search needs a second tower."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from cl_core.errors import CheckpointError
from cl_core.modality import Item, Modality
from cl_core.models.base import BaseModel, Prepared
from cl_core.models.bert import BertEncoder, WordPiece, load_bert
from cl_core.models.config_limits import MAX_CONFIG_BYTES

MODULES = "modules.json"
TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"
POOL_MODES = ("mean", "cls", "max")


def is_sentence_folder(folder: Path) -> bool:
    return (folder / MODULES).is_file() and (folder / "config.json").is_file()


class SentenceModel(BaseModel):
    encoder: BertEncoder
    tokenizer: WordPiece
    pooling: str = "mean"
    max_length: int = 256

    def prepare(self, modality: Modality, items: list[Item]) -> Prepared:
        return Prepared(self.tokenizer([str(it.data) for it in items]))

    @torch.no_grad()
    def forward(self, modality: Modality, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = inputs["attention_mask"]
        states = self.encoder(inputs["input_ids"], mask).float()
        if self.pooling == "cls":
            return states[:, 0]
        keep = mask.unsqueeze(-1).to(states.dtype)
        if self.pooling == "max":
            return states.masked_fill(keep == 0, float("-inf")).max(dim=1).values
        return (states * keep).sum(1) / keep.sum(1).clamp_min(1e-9)

    def torch_modules(self) -> list[torch.nn.Module]:
        return [self.encoder]

    def preprocessing(self) -> dict[str, Any]:
        return {"text": {"tokenizer": "wordpiece (tokenizer.json)", "max_length": self.max_length,
                         "pooling": self.pooling}}


def _json(path: Path) -> Any:
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path}: too large for a sentence-transformers config")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: not a readable JSON config: {exc}") from None


def load_sentence_folder(folder: Path, device: torch.device) -> SentenceModel:
    modules = _json(folder / MODULES)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise CheckpointError(f"{folder / MODULES}: not a list of modules")
    kinds = [str(m.get("type")) for m in modules]
    if not kinds or kinds[0] != TRANSFORMER or str(modules[0].get("path", "")) not in ("", "0_Transformer"):
        raise CheckpointError(f"{folder}: a sentence-transformers model must start with its Transformer module")
    unknown = [k for k in kinds[1:] if k not in (POOLING, NORMALIZE)]
    if unknown:
        raise CheckpointError(f"{folder}: sentence-transformers modules {', '.join(unknown)} are not supported yet "
                              "(Transformer, Pooling and Normalize are)")
    base = folder / str(modules[0].get("path", ""))
    config = _json(base / "config.json")
    if config.get("model_type") != "bert":
        raise CheckpointError(f"{folder}: sentence-transformers models built on {config.get('model_type')!r} are not "
                              "supported yet (BERT-based ones, such as all-MiniLM-L6-v2, are)")
    pooling = "mean"
    pool_module = next((m for m in modules if m.get("type") == POOLING), None)
    if pool_module is not None:
        pool_cfg = _json(folder / str(pool_module.get("path", "1_Pooling")) / "config.json")
        modes = [mode for mode in POOL_MODES if pool_cfg.get(f"pooling_mode_{mode}_tokens" if mode != "cls"
                                                             else "pooling_mode_cls_token")]
        others = [k for k, v in pool_cfg.items() if k.startswith("pooling_mode") and v and
                  k not in ("pooling_mode_mean_tokens", "pooling_mode_cls_token", "pooling_mode_max_tokens")]
        if len(modes) != 1 or others:
            raise CheckpointError(f"{folder}: pooling {pool_cfg} is not supported (one of mean, cls or max is)")
        pooling = modes[0]
    st_cfg = folder / "sentence_bert_config.json"
    max_length = int(_json(st_cfg).get("max_seq_length", 256)) if st_cfg.is_file() else 256
    max_length = max(1, min(max_length, int(config.get("max_position_embeddings", 512))))
    encoder = load_bert(base).to(device)
    model = SentenceModel(name=folder.name, format="sentence_transformers", source=folder,
                          modalities=(Modality.TEXT,), embed_dim=encoder.hidden_size, device=device)
    model.encoder, model.tokenizer = encoder, WordPiece(base, max_length)
    model.pooling, model.max_length = pooling, max_length
    return model
