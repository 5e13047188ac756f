"""Tissue workflows on files: infer an H&E patch's marker profile from a reference gallery of mIF patches
(with the case's clinical text, when given; cl_core.analysis.biomarkers), and the shift of a case's profiles
when only its text is edited (cl_core.analysis.counterfactual)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cl_core.actions.gallery import embed_source
from cl_core.analysis import biomarkers as bm
from cl_core.analysis import cells
from cl_core.analysis import counterfactual as cf
from cl_core.analysis.biomarkers import MarkersInferred
from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.items import embed_paths
from cl_core.errors import ClensError
from cl_core.modality import ChannelStack, Modality
from cl_core.models.base import BaseModel
from cl_core.readers.channels import ChannelMatch, match_channels
from cl_core.readers.registry import read_path
from cl_core.task import TaskState

TARGETS = ("mean", "positive")  # mean channel intensity; positive-cell fraction (cl_core.analysis.cells)
THRESHOLD_SAMPLE = 200  # reference stacks the nuclear threshold is found on


def reference_targets(sources: list[str], state: TaskState, target: str = "mean"
                      ) -> tuple[list[str], np.ndarray, list[int], list[str]]:
    """Each reference stack's targets, aligned by channel name with the first stack's: mean channel intensities,
    or (target "positive") positive-cell fractions with the cell count for the nuclear channel. Returns the
    markers, their values, which of `sources` gave them, and one line per stack left out (file and reason)."""
    if target not in TARGETS:
        raise ClensError(f"the target is one of {', '.join(TARGETS)} (got {target!r})")
    markers: list[str] | None = None
    rows, used, skipped = [], [], []
    stacks: list[np.ndarray] = []  # aligned pixels, for the positive-cell measure
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
        found = match_channels(markers, names)
        if found.missing:
            skipped.append(f"{source}: no channel {', '.join(found.missing)} (the first reference stack has them)")
            continue
        used.append(i)
        if target == "mean":
            means = bm.mean_intensity(stack.pixels[None])[0]
            rows.append([means[c] for c in found.indices])
        else:
            stacks.append(stack.pixels[list(found.indices)])
    if target == "positive" and stacks:
        assert markers is not None
        nuclear = cells.nuclear_channel(markers)
        if nuclear is None:
            raise ClensError(f"positive-cell fractions need a nuclear stain to find cells (DAPI, Hoechst, ...); the "
                             f"reference stacks have {', '.join(markers)}")
        threshold = cells.nuclear_threshold(stacks[:THRESHOLD_SAMPLE], nuclear)
        fractions, _ = cells.positive_fractions([cells.cell_values(p, nuclear, threshold) for p in stacks], nuclear)
        rows = fractions.tolist()
    return markers or [], np.asarray(rows, np.float64), used, skipped


def check_channels(model: BaseModel, paths: list[str | Path]) -> list[tuple[str, ChannelMatch | None, str]]:
    """How each stack's channels map to the model's (by name, case and aliases aside): per file the match,
    or None and why it could not be read or matched."""
    pre = model.info().get("preprocessing", {}).get("multichannel", {})
    expected = [str(n) for n in pre.get("channels", [])]
    if Modality.MULTICHANNEL not in model.modalities:
        raise ClensError(f"{model.name} reads no channel stacks")
    out: list[tuple[str, ChannelMatch | None, str]] = []
    for path in paths:
        try:
            items = read_path(path, Modality.MULTICHANNEL)
        except ClensError as exc:
            out.append((str(path), None, str(exc)))
            continue
        stack = items[0].data if items else None
        if not isinstance(stack, ChannelStack):
            out.append((str(path), None, "not a channel stack"))
        elif not stack.channel_names:
            why = (f"{len(stack.pixels)} unnamed channels, taken in order" if len(stack.pixels) == len(expected)
                   else f"{len(stack.pixels)} unnamed channels; the model takes {len(expected)} "
                        f"({', '.join(expected)}): name them in a {Path(path).name}.channels.json sidecar")
            out.append((str(path), None, why))
        elif not expected:
            out.append((str(path), None, "the model names no channels: any stack with its channel count is read"))
        else:
            out.append((str(path), match_channels(expected, stack.channel_names), ""))
    return out


@dataclass
class Reference:
    """A reference gallery's mIF patches: their vectors, z-scored targets, markers, files, and what was left out."""

    vectors: np.ndarray  # [N, D]
    targets: np.ndarray  # [N, C]
    markers: list[str]
    sources: list[str]
    skipped: list[str]
    raw: np.ndarray | None = None  # [N, C] the targets before z-scoring
    target: str = "mean"


def _check(model: BaseModel, w: float, k: int, text: bool) -> None:
    if not (np.isfinite(w) and 0.0 <= w <= 1.0):
        raise ClensError(f"-w is the H&E weight, between 0 and 1 (got {w})")
    if k < 1:
        raise ClensError(f"k must be at least 1 (got {k})")
    for needed in (Modality.IMAGE, Modality.MULTICHANNEL) + ((Modality.TEXT,) if text else ()):
        if needed not in model.modalities:
            raise ClensError(f"{model.name} has no {needed.value} tower: it cannot infer markers this way")


def load_reference(model: BaseModel, reference: str | Path, cache: EmbeddingCache | None, state: TaskState,
                   pool: DecodePool | None, allow_outside: bool, exclude: Collection[str] = (),
                   target: str = "mean") -> Reference:
    """Embed (through the cache) and read the reference gallery's mIF patches, less those of the samples
    `exclude` (the query's own case: its mIF patch would be the answer, not an inference)."""
    emb = embed_source(model, reference, cache, state, pool, allow_outside)
    if emb.cancelled:
        state.check_cancelled()
    idx = emb.indices(Modality.MULTICHANNEL)
    if exclude:
        left_out = set(exclude)
        idx = np.array([i for i in idx if emb.rows[i].sample_id not in left_out], np.int64)
    if not len(idx):
        raise ClensError(f"{reference}: no mIF (multichannel) patches to infer from")
    markers, raw, used, skipped = reference_targets([emb.rows[i].source for i in idx], state, target)
    if not used:
        raise ClensError(f"{reference}: none of its mIF patches could be read ({skipped[0] if skipped else ''})")
    idx = idx[used]
    return Reference(np.asarray(emb.vectors[idx], np.float32), bm.Standardiser.fit(raw)(raw), markers,
                     [emb.rows[i].source for i in idx], skipped, raw, target)


def infer_markers(model: BaseModel, he: str | Path, reference: str | Path, text: str | None = None,
                  k: int = bm.K, w: float = bm.W_HE, cache: EmbeddingCache | None = None,
                  state: TaskState | None = None, pool: DecodePool | None = None,
                  allow_outside: bool = False, exclude_sample: str | None = None,
                  target: str = "mean") -> MarkersInferred:
    """An H&E patch's inferred marker profile from the mIF patches of `reference` (a gallery).
    `exclude_sample`: the H&E patch's own sample id in that gallery, whose mIF patch must not be a neighbour
    (it would be the answer, not an inference). `target`: mean intensity, or positive-cell fraction."""
    _check(model, w, k, bool(text))
    state = state or TaskState()
    ref = load_reference(model, reference, cache, state, pool, allow_outside,
                         () if exclude_sample is None else (exclude_sample,), target)
    query = embed_paths(model, [he], [text] if text else [], state=state, pool=pool)
    if query.failures:
        raise ClensError(str(query.failures[0]))
    he_vec = np.asarray(query.vectors[0])
    text_vec = np.asarray(query.vectors[1]) if text else None
    got = bm.infer(ref.vectors, ref.targets, he_vec, text_vec, ref.markers,
                   float(model.logit_scale), w=w if text else 1.0, k=k)
    raw = got.weights @ ref.raw[got.neighbours] if ref.raw is not None else None
    at = cells.nuclear_channel(ref.markers) if target == "positive" else None
    nuclear = ref.markers[at] if at is not None else None
    return MarkersInferred(got, [ref.sources[i] for i in got.neighbours], len(ref.sources), w if text else 1.0,
                           bool(text), str(he), str(reference), text, ref.skipped, target, raw, nuclear)


def counterfactual(model: BaseModel, he: list[str | Path], reference: str | Path, text: str, edited: str,
                   k: int = cf.K, w: float = cf.W_HE, cache: EmbeddingCache | None = None,
                   state: TaskState | None = None, pool: DecodePool | None = None,
                   allow_outside: bool = False, exclude_samples: Collection[str] = (),
                   target: str = "mean") -> cf.Shift:
    """How the inferred marker profiles of one case's H&E patches shift when only its clinical text is edited.
    Patches that cannot be read are left out and named; at least one must remain. `exclude_samples`: the
    patches' own samples in the reference gallery."""
    _check(model, w, k, True)
    if not he:
        raise ClensError("give the case's H&E patches (one or more)")
    if not text.strip() or not edited.strip():
        raise ClensError("give the clinical text and its edited version")
    if text == edited:
        raise ClensError("the edited text is the same as the text: nothing to compare")
    state = state or TaskState()
    ref = load_reference(model, reference, cache, state, pool, allow_outside, exclude_samples, target)
    query = embed_paths(model, list(he), [text, edited], Modality.IMAGE, state=state, pool=pool)
    if query.cancelled:
        state.check_cancelled()
    is_text = np.array([it.modality is Modality.TEXT for it in query.items], bool)
    if is_text.sum() != 2:
        raise ClensError("the texts could not both be embedded: "
                         + "; ".join(str(f) for f in query.failures if f.source.startswith("text")))
    if not (~is_text).any():
        raise ClensError("none of the H&E patches could be read: " + "; ".join(str(f) for f in query.failures))
    vectors = np.asarray(query.vectors)
    texts = vectors[is_text]
    got = cf.shift(ref.vectors, ref.targets, vectors[~is_text], texts[0], texts[1], ref.markers,
                   float(model.logit_scale), w, k)
    got.text, got.edited_text, got.reference, got.target = text, edited, str(reference), target
    got.patches = [it.source for it in query.items if it.modality is not Modality.TEXT]
    got.left_out = [str(f) for f in query.failures] + [f"reference {line}" for line in ref.skipped]
    return got
