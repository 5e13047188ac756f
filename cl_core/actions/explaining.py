"""`clens explain`: where in an image, when in a sound, or which words of a text made it match a query."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cl_core.analysis.explain import (
    Explained,
    TimeCurve,
    explain_audio,
    explain_image,
    explain_text,
    spectrogram,
)
from cl_core.embed.items import embed_paths
from cl_core.errors import ClensError
from cl_core.modality import AudioClip, ChannelStack, Modality
from cl_core.models.base import BaseModel
from cl_core.objectives import fuse
from cl_core.readers.registry import read_path
from cl_core.readers.thumbnail import ChannelLook, blend, composite
from cl_core.task import TaskState


def explain(model: BaseModel, target: str | Path | None = None, texts: Sequence[str] = (),
            files: Sequence[str] = (), target_text: str | None = None, state: TaskState | None = None, *,
            query_vector: np.ndarray | None = None, query_label: Sequence[str] = (), modality: str | None = None,
            fingerprint: str = "") -> Explained:
    """Embed the query (texts and files, fused by their mean; or `query_vector`, already embedded, such as the
    shown results' query), read the target (as `modality` when given), and map its match."""
    state = state or TaskState()
    if query_vector is None and not texts and not files:
        raise ClensError("give the query: --text T or --query FILE")
    if (target is None) == (target_text is None):
        raise ClensError("give one target: a file, or --target-text T")
    if query_vector is not None:
        q = np.asarray(query_vector, np.float32).reshape(-1)
        if q.shape[0] != model.embed_dim or not np.isfinite(q).all() or not q.any():
            raise ClensError(f"the query vector is not a finite, non-zero {model.embed_dim}-d vector")
        sources = list(query_label)
    else:
        got = embed_paths(model, list(files), list(texts), state=state)
        sources = [it.source for it in got.items]
        if got.failures or not len(got.vectors):
            return Explained(sources, str(target or target_text), "", failures=list(got.failures),
                             model_fingerprint=fingerprint)
        q = fuse(got.vectors)
    if target_text is not None:
        return Explained(sources, target_text, Modality.TEXT.value, words=explain_text(model, q, target_text, state),
                         model_fingerprint=fingerprint)
    items = read_path(str(target), Modality(modality) if modality else None)
    if not items:
        raise ClensError(f"{target}: nothing to explain in it")
    item = items[0]
    if item.modality not in model.modalities:
        raise ClensError(f"{target}: the model has no {item.modality.value} tower")
    out = Explained(sources, str(target), item.modality.value, picture=item.data, model_fingerprint=fingerprint)
    if isinstance(item.data, Image.Image | ChannelStack):
        out.image = explain_image(model, q, item.data, state)
    elif isinstance(item.data, AudioClip):
        out.curve = explain_audio(model, q, item.data, state)
    else:
        out.words = explain_text(model, q, str(item.data), state)
    return out


def save_picture(explained: Explained, out: str | Path, opacity: float = 0.55) -> Path:
    """The map as a PNG: the heat over the picture with a colour bar, or the score over time."""
    from cl_core.atomic import atomic_write

    if not 0.0 <= opacity <= 1.0:
        raise ClensError(f"opacity is from 0 to 1 (got {opacity})")
    if explained.image is not None:
        pic = overlay_picture(explained, opacity)
    elif explained.curve is not None:
        pic = _curve_picture(explained.curve)
    else:
        raise ClensError("a text's word importances are printed or written as JSON (--json), not drawn")
    path = Path(out)
    with atomic_write(path) as fh:
        pic.save(fh, format="PNG")
    return path


def overlay_picture(explained: Explained, opacity: float = 0.55, colour_bar: bool = True,
                    composite_channels: Sequence[str] | None = None) -> Image.Image:
    """The image map drawn over its picture (a channel stack as its colour composite), the peak ringed, and a
    colour bar at the right (high at the top)."""
    assert explained.image is not None
    picture = explained.picture
    if isinstance(picture, ChannelStack):
        looks = [ChannelLook.parse(c, i) for i, c in enumerate(composite_channels or ())]
        base = Image.fromarray(blend(picture, looks) if looks else composite(picture))
    else:
        base = picture.convert("RGB")
    pic = heat_overlay(base, explained.image.heat, opacity, colour_bar)
    x, y = explained.image.peak
    r = max(3, base.width // 40)
    ImageDraw.Draw(pic).ellipse((x - r, y - r, x + r, y + r), outline=(255, 255, 255), width=max(1, r // 4))
    return pic


def spectrogram_picture(explained: Explained) -> np.ndarray:
    """[bins, T] uint8 levels of the target sound's spectrogram (low frequencies in row 0), for drawing."""
    assert isinstance(explained.picture, AudioClip)
    db = spectrogram(explained.picture)
    lo, hi = np.percentile(db, 5), float(db.max())
    return (np.clip((db - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


LUT_POINTS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float64)


def colour_map(v: np.ndarray) -> np.ndarray:
    """[..., 3] uint8 colours of values in [0, 1] (an inferno-like ramp: dark = low, bright = high)."""
    x = np.clip(v, 0, 1) * (len(LUT_POINTS) - 1)
    i = np.minimum(x.astype(int), len(LUT_POINTS) - 2)
    f = (x - i)[..., None]
    return ((1 - f) * LUT_POINTS[i] + f * LUT_POINTS[i + 1]).astype(np.uint8)


def heat_overlay(base: Image.Image, heat: np.ndarray, opacity: float, colour_bar: bool = True,
                 tiles: bool = False) -> Image.Image:
    """`heat` (any shape; stretched to the picture) over `base`, min to max, with a colour bar at the right.
    `tiles`: each value a sharp block (slide tiles), not smoothed; NaN values leave the picture clear."""
    finite = np.isfinite(heat)
    lo, hi = (float(heat[finite].min()), float(heat[finite].max())) if finite.any() else (0.0, 1.0)
    norm = (np.where(finite, heat, lo) - lo) / max(hi - lo, 1e-12)
    how = Image.Resampling.NEAREST if tiles else Image.Resampling.BICUBIC
    colours = Image.fromarray(colour_map(norm), "RGB").resize(base.size, how)
    blended = Image.blend(base, colours, opacity)
    if not finite.all():
        shown = Image.fromarray((finite * 255).astype(np.uint8), "L").resize(base.size, Image.Resampling.NEAREST)
        blended = Image.composite(blended, base, shown)
    if not colour_bar:
        return blended
    bar_w = max(8, base.width // 24)
    out = Image.new("RGB", (base.width + bar_w + 4, base.height), (255, 255, 255))
    out.paste(blended, (0, 0))
    ramp = colour_map(np.linspace(1, 0, base.height)[:, None].repeat(bar_w, axis=1))
    out.paste(Image.fromarray(ramp, "RGB"), (base.width + 4, 0))  # the colour bar: high at the top
    return out


def _curve_picture(curve: TimeCurve, width: int = 640, height: int = 200) -> Image.Image:
    pic = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(pic)
    s = curve.scores
    lo, hi = float(s.min()), float(s.max())
    t_end = float(curve.times[-1]) or 1.0
    pts = [(int(t / t_end * (width - 1)), int((1 - (v - lo) / max(hi - lo, 1e-12)) * (height - 21)) + 10)
           for t, v in zip(curve.times, s, strict=True)]
    d.line(pts, fill=(40, 80, 200), width=2)
    px = int(curve.peak_s / t_end * (width - 1))
    d.line([(px, 0), (px, height)], fill=(220, 40, 40), width=1)
    d.text((4, height - 12), f"0 s … {t_end:.1f} s; peak {curve.peak_s:.2f} s", fill=(0, 0, 0))
    return pic
