"""Embed files and texts (a drop on the window, `clens embed`), and write the vectors with their map."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from cl_core.atomic import save_npy_atomic, write_text_atomic
from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.gallery import stack_notes
from cl_core.embed.items import EmbedResult, embed_items, embed_paths, summarise_failures
from cl_core.errors import ClensError, Failure
from cl_core.modality import ChannelStack, Item, Modality
from cl_core.models.base import BaseModel
from cl_core.models.fingerprint import fingerprint_of
from cl_core.task import TaskState


def embed_inputs(model: BaseModel, paths: Sequence[str | Path] = (), texts: Sequence[str] = (),
                 modality: Modality | None = None, state: TaskState | None = None, batch_size: int | None = None,
                 pool: DecodePool | None = None, items: Sequence[Item] = ()) -> EmbedResult:
    """Read files (in decoder processes), wrap texts, embed; `items` are already decoded (kept across a
    model switch). The result names the model fingerprint it was computed with."""
    state = state or TaskState()
    if items:
        result = embed_items(model, list(items), state, batch_size)
        if paths or texts:
            more = embed_paths(model, paths, texts, modality, state, batch_size, pool=pool)
            result = EmbedResult(result.items + more.items, np.concatenate([result.vectors, more.vectors]),
                                 result.failures + more.failures, result.cancelled or more.cancelled)
    else:
        result = embed_paths(model, paths, texts, modality, state, batch_size, pool=pool)
    stacks = [(it.source, it.data.channel_names) for it in result.items
              if isinstance(it.data, ChannelStack) and it.data.channel_names]
    notes = [Failure(src, note, "note") for src, note in stack_notes(model, stacks)]
    return replace(result, failures=summarise_failures(result.failures) + notes,
                   model_fingerprint=fingerprint_of(model))


def save_embeddings(result: EmbedResult, model: BaseModel, out: str | Path) -> Path:
    """`out`.npy (L2-normalised float32 rows in input order) and `out`.json mapping rows to inputs."""
    out = Path(out)
    if out.is_dir():
        raise ClensError(f"{out}: is a folder; give a file name ending in .npy")
    if not out.parent.is_dir():
        raise ClensError(f"{out.parent}: no such folder")
    save_npy_atomic(out, result.vectors.astype(np.float32))
    manifest = {
        "model": model.info()["name"], "format": model.format, "embed_dim": model.embed_dim,
        "fingerprint": result.model_fingerprint,
        "rows": [{"row": i, "source": it.source, "modality": it.modality.value,
                  **({"text": it.data} if it.modality is Modality.TEXT else {})}
                 for i, it in enumerate(result.items)],
        "failures": [{"source": f.source, "reason": f.reason, "stage": f.stage} for f in result.failures],
    }
    write_text_atomic(out.with_suffix(".json"), json.dumps(manifest, indent=2))
    return out
