"""Whole-slide heatmaps: a slide tiled at the model's patch size (cl_core.readers.slide, lazily, one band of
tiles at a time), every tile embedded through the embedding cache (a band is one cache entry keyed by the
slide's content, so reopening costs a lookup and an interrupted run resumes at the first band not done), and
each tile's cosine to a query (texts, files, or both fused) drawn over the slide's overview."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cl_core.analysis.slide_heat import SlideEmbedding, SlideHeat, background_tiles, heat_of, otsu  # noqa: F401 - re-exported
from cl_core.embed.cache import EmbeddingCache, Record
from cl_core.embed.items import embed_items, embed_paths
from cl_core.errors import ClensError
from cl_core.modality import ChannelStack, Modality
from cl_core.models.base import BaseModel
from cl_core.models.fingerprint import fingerprint_of
from cl_core.objectives import fuse
from cl_core.readers.slide import Slide
from cl_core.task import TaskState


def patch_size(model: BaseModel, modality: Modality) -> int:
    """The model's input size for that tower (its preprocessing's `size`; 224 when it does not say)."""
    pre = model.info().get("preprocessing", {}).get(modality.value, {})
    return int(pre.get("size", 224)) if isinstance(pre, dict) else 224


def slide_modality(model: BaseModel, slide: Slide) -> Modality:
    want = Modality.IMAGE if slide.rgb else Modality.MULTICHANNEL
    if want in model.modalities:
        return want
    if slide.rgb and Modality.MULTICHANNEL in model.modalities:
        return Modality.MULTICHANNEL  # an RGB slide through a 3-channel stack tower
    raise ClensError(f"{model.name} has no {want.value} tower for {slide.path.name}")


def _check_channels(model: BaseModel, slide: Slide) -> list[str]:
    """Refuse a stack the model cannot read before any tile is: a channel it needs and the slide lacks; else
    say which channels are read through an alias and which are ignored."""
    from cl_core.models.preprocess import ALIAS_NOTE
    from cl_core.readers.channels import match_channels

    pre = model.info().get("preprocessing", {}).get("multichannel", {})
    expected = [str(n) for n in pre.get("channels", [])] if isinstance(pre, dict) else []
    if expected and slide.channel_names:
        found = match_channels(expected, slide.channel_names)
        if found.missing:
            raise ClensError(f"{slide.path}: lacks channel(s) {', '.join(found.missing)} the model needs (the "
                             f"slide has: {', '.join(slide.channel_names)}; {ALIAS_NOTE})")
        return found.describe()
    elif expected and slide.channels != len(expected):
        raise ClensError(f"{slide.path}: {slide.channels} unnamed channels; the model takes {len(expected)} "
                         f"({', '.join(expected)})")
    return []


def _band_key(digest: str, patch: int, row: int) -> str:
    return hashlib.sha256(f"{digest}\0slide\0{patch}\0{row}".encode()).hexdigest()


def embed_slide(model: BaseModel, path: str | Path, cache: EmbeddingCache | None = None,
                state: TaskState | None = None, patch: int | None = None) -> SlideEmbedding:
    """Every whole tile of the slide embedded (through the cache when given); a cancel keeps what was done."""
    state = state or TaskState()
    slide = Slide.open(path)
    modality = slide_modality(model, slide)
    notes = _check_channels(model, slide) if modality is Modality.MULTICHANNEL and not slide.rgb else []
    patch = patch or patch_size(model, modality)
    if patch < 8 or patch > min(slide.height, slide.width):
        raise ClensError(f"{slide.path.name}: tiles of {patch} px do not fit the slide ({slide.width} x "
                         f"{slide.height} px)")
    rows, cols = slide.grid(patch)
    fp = fingerprint_of(model, cache.file_digest if cache is not None else None)
    out = SlideEmbedding(str(path), patch, rows, cols, modality, np.full((rows * cols, model.embed_dim), np.nan,
                                                                         np.float32),
                         model_fingerprint=fp, description=slide.describe(patch), channel_notes=notes)
    digest = cache.file_digest(slide.path) if cache is not None else ""
    keys = [_band_key(digest, patch, r) for r in range(rows)] if cache is not None else []
    known = cache.lookup(fp, keys) if cache is not None else {}
    todo = [r for r in range(rows) if not keys or keys[r] not in known]
    for r in range(rows):
        if keys and keys[r] in known:
            stored = known[keys[r]]
            vecs = cache.vectors(stored, model.embed_dim)  # type: ignore[union-attr]
            for entry, v in zip(stored, vecs, strict=True):
                if entry.segment is not None:
                    out.vectors[r * cols + entry.ordinal] = v
                else:
                    out.failed.append(f"{entry.ordinal * patch},{r * patch}: {entry.reason}")
            out.from_cache += 1
    done = rows - len(todo)
    state.set_progress(done, rows, "embedding the slide's tiles")
    for r, tiles in slide.bands(patch, todo):
        if state.cancel_requested:
            out.cancelled = True
            break
        items = slide.items(tiles, r, patch)
        got = embed_items(model, items, state.child(lambda _p: None))
        if got.cancelled:
            out.cancelled = True
            break
        place = {it.source: i for i, it in enumerate(items)}
        records = []
        for it, v in zip(got.items, got.vectors, strict=True):
            c = place[it.source]
            out.vectors[r * cols + c] = v
            records.append(Record(keys[r] if keys else "", c, modality, "", None, np.asarray(v, np.float32)))
        for f in got.failures:
            c = place.get(f.source, -1)
            out.failed.append(f"{f.source.rsplit('@', 1)[-1]}: {f.reason}")
            if c >= 0 and keys:
                records.append(Record(keys[r], c, modality, "", None, None, f.reason))
        if cache is not None:
            cache.put(fp, records, {keys[r]: len(records)})
        done += 1
        state.set_progress(done, rows, "embedding the slide's tiles")
    out.done_rows = done
    return out


def query_vector(model: BaseModel, texts: Sequence[str] = (), files: Sequence[str | Path] = (),
                 weights: Sequence[float] | None = None, state: TaskState | None = None) -> np.ndarray:
    """The query's items embedded and fused (weighted mean of unit vectors), files first, then texts."""
    if not texts and not files:
        raise ClensError("give a query: a text, a file (an H&E or mIF patch), or both")
    got = embed_paths(model, list(files), list(texts), state=state)
    if got.failures:
        raise ClensError(f"the query could not be embedded: {got.failures[0]}")
    return fuse(np.asarray(got.vectors), weights)


def slide_heatmap(model: BaseModel, path: str | Path, texts: Sequence[str] = (), files: Sequence[str | Path] = (),
                  weights: Sequence[float] | None = None, cache: EmbeddingCache | None = None,
                  state: TaskState | None = None, patch: int | None = None,
                  skip_background: bool = True) -> SlideHeat:
    """Embed the slide's tiles (cached) and score each against the fused query; glass tiles are found and
    left out of the picture and the ranking (still embedded: they are cheap, and cached with the rest)."""
    state = state or TaskState()
    q = query_vector(model, texts, files, weights, state)
    emb = embed_slide(model, path, cache, state, patch)
    background = background_tiles(Slide.open(path), emb.patch) if skip_background else None
    return SlideHeat(emb, heat_of(emb, q), [*map(str, files), *texts], background)


def slide_width(path: str | Path) -> int:
    """The slide's width in pixels at full resolution (from its header)."""
    return Slide.open(path).width


def overview_picture(path: str | Path, max_side: int = 2048, channels: Sequence[str] | None = None) -> Image.Image:
    """The slide's overview as RGB: an H&E level as it is, a stack's as a composite (`channels`: ChannelLook
    specs or three names, as the thumbnails take them)."""
    from cl_core.readers.thumbnail import ChannelLook, blend, composite

    slide = Slide.open(path)
    pixels, _factor = slide.overview(max_side)
    if slide.rgb:
        return Image.fromarray(np.ascontiguousarray(pixels[:3].transpose(1, 2, 0)), "RGB")
    stack = ChannelStack(pixels.astype(np.float32), slide.channel_names)
    looks = [ChannelLook.parse(c, i) for i, c in enumerate(channels or ())]
    return Image.fromarray(blend(stack, looks) if looks else composite(stack))


def heat_picture(heat: SlideHeat, opacity: float = 0.5, max_side: int = 2048) -> Image.Image:
    """The heatmap over the slide's overview, with a colour bar (high at the top); glass/failed tiles clear."""
    from cl_core.actions.explaining import heat_overlay

    if not 0.0 <= opacity <= 1.0:
        raise ClensError(f"opacity is from 0 to 1 (got {opacity})")
    e = heat.embedding
    slide = Slide.open(e.path)
    base = overview_picture(e.path, max_side)
    area = base.crop((0, 0, max(1, round(e.cols * e.patch * base.width / slide.width)),
                      max(1, round(e.rows * e.patch * base.height / slide.height))))
    return heat_overlay(area, heat.shown, opacity, tiles=True)


def save_heat(heat: SlideHeat, png: str | Path | None = None, scores: str | Path | None = None,
              opacity: float = 0.5) -> None:
    """Write the overlay PNG and/or the [rows, cols] scores (.npy), atomically."""
    from cl_core.atomic import atomic_write, save_npy_atomic

    if png is not None:
        picture = heat_picture(heat, opacity)
        with atomic_write(png) as fh:
            picture.save(fh, format="PNG")
    if scores is not None:
        save_npy_atomic(scores, heat.scores.astype(np.float32))
