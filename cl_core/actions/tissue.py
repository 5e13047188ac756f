"""Tissue workflows: infer an H&E patch's marker profile from a reference gallery of mIF patches (with the
case's clinical text, when given) — cl_core.analysis.biomarkers, on files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cl_core.actions.gallery import embed_source
from cl_core.analysis import biomarkers as bm
from cl_core.analysis.biomarkers import MarkersInferred
from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.items import embed_paths
from cl_core.errors import ClensError
from cl_core.modality import ChannelStack, Modality
from cl_core.models.base import BaseModel
from cl_core.readers.registry import read_path
from cl_core.task import TaskState


def reference_targets(sources: list[str], state: TaskState) -> tuple[list[str], np.ndarray, list[int], list[str]]:
    """Each reference stack's mean channel intensities, aligned by channel name with the first stack's: the
    markers, their values, which of `sources` gave them, and one line per stack left out (file and reason)."""
    markers: list[str] | None = None
    rows, used, skipped = [], [], []
    for i, source in enumerate(sources):
        state.check_cancelled()
        state.set_progress(i, len(sources), "reading the reference stacks")
        try:
            items = read_path(source, Modality.MULTICHANNEL)
        except ClensError as exc:
            skipped.append(f"{source}: {exc}")
            continue
        if not items or not isinstance(items[0].data, ChannelStack):
            skipped.append(f"{source}: not a channel stack")
            continue
        stack = items[0].data
        names = list(stack.channel_names or [f"channel {c}" for c in range(stack.pixels.shape[0])])
        if markers is None:
            markers = names
        missing = [m for m in markers if m not in names]
        if missing:
            skipped.append(f"{source}: no channel {', '.join(missing)} (the first reference stack has them)")
            continue
        means = bm.mean_intensity(stack.pixels[None])[0]
        rows.append([means[names.index(m)] for m in markers])
        used.append(i)
    return markers or [], np.asarray(rows, np.float64), used, skipped


def infer_markers(model: BaseModel, he: str | Path, reference: str | Path, text: str | None = None,
                  k: int = bm.K, w: float = bm.W_HE, cache: EmbeddingCache | None = None,
                  state: TaskState | None = None, pool: DecodePool | None = None,
                  allow_outside: bool = False, exclude_sample: str | None = None) -> MarkersInferred:
    """An H&E patch's inferred marker profile from the mIF patches of `reference` (a gallery).
    `exclude_sample`: the H&E patch's own sample id in that gallery, whose mIF patch must not be a neighbour
    (it would be the answer, not an inference)."""
    if not (np.isfinite(w) and 0.0 <= w <= 1.0):
        raise ClensError(f"-w is the H&E weight, between 0 and 1 (got {w})")
    if k < 1:
        raise ClensError(f"k must be at least 1 (got {k})")
    for needed in (Modality.IMAGE, Modality.MULTICHANNEL) + ((Modality.TEXT,) if text else ()):
        if needed not in model.modalities:
            raise ClensError(f"{model.name} has no {needed.value} tower: it cannot infer markers this way")
    state = state or TaskState()
    emb = embed_source(model, reference, cache, state, pool, allow_outside)
    if emb.cancelled:
        state.check_cancelled()
    idx = emb.indices(Modality.MULTICHANNEL)
    if exclude_sample is not None:
        idx = np.array([i for i in idx if emb.rows[i].sample_id != exclude_sample], np.int64)
    if not len(idx):
        raise ClensError(f"{reference}: no mIF (multichannel) patches to infer from")
    markers, raw, used, skipped = reference_targets([emb.rows[i].source for i in idx], state)
    if not used:
        raise ClensError(f"{reference}: none of its mIF patches could be read ({skipped[0] if skipped else ''})")
    idx = idx[used]
    sources = [emb.rows[i].source for i in idx]
    targets = bm.Standardiser.fit(raw)(raw)
    query = embed_paths(model, [he], [text] if text else [], state=state, pool=pool)
    if query.failures:
        raise ClensError(str(query.failures[0]))
    he_vec = np.asarray(query.vectors[0])
    text_vec = np.asarray(query.vectors[1]) if text else None
    got = bm.infer(np.asarray(emb.vectors[idx], np.float32), targets, he_vec, text_vec, markers,
                   float(model.logit_scale), w=w if text else 1.0, k=k)
    return MarkersInferred(got, [sources[i] for i in got.neighbours], len(idx), w if text else 1.0, bool(text),
                           str(he), str(reference), text, skipped)
