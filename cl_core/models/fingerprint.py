"""A model's fingerprint: what its vectors depend on, hashed, so cached vectors and indexes never mix models.

It covers the content of every weight/config/tokenizer file (not the path: a copied checkpoint keeps its
cache) and the preprocessing and modalities the adapter reports. It leaves out model cards and training
state, which do not change a vector.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from cl_core.formats import MODEL_CARD_JSON, MODEL_CARD_MD, TRAIN_STATE, WEIGHT_SUFFIXES
from cl_core.hashing import file_sha256
from cl_core.models.base import BaseModel

HASHED_SUFFIXES = {*WEIGHT_SUFFIXES, ".json", ".txt", ".model"}
NOT_HASHED = {MODEL_CARD_JSON, MODEL_CARD_MD, "README.md", TRAIN_STATE}


def model_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in HASHED_SUFFIXES
                  and p.name not in NOT_HASHED and not any(part.startswith(".") for part in p.relative_to(source).parts))


def model_fingerprint(model: BaseModel, digest: Callable[[Path], str] = file_sha256) -> str:
    """32 hex digits; `digest` may be a memoised file hash (EmbeddingCache.file_digest)."""
    info = model.info()
    h = hashlib.sha256()
    h.update(json.dumps({k: info[k] for k in ("format", "modalities", "embed_dim", "preprocessing")},
                        sort_keys=True, default=str).encode())
    source = Path(model.source)
    for f in model_files(source):
        rel = f.name if source.is_file() else f.relative_to(source).as_posix()
        h.update(f"\0{rel}\0{digest(f)}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:32]


def fingerprint_of(model: BaseModel, digest: Callable[[Path], str] | None = None) -> str:
    """The model's fingerprint, memoised on the model object (its weights are hashed once per load)."""
    fp = getattr(model, "_clens_fingerprint", None)
    if fp is None:
        fp = model_fingerprint(model, digest or file_sha256)
        model._clens_fingerprint = fp  # type: ignore[attr-defined]
    return str(fp)
