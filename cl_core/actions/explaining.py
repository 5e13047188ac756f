"""`clens explain`: where in an image, when in a sound, or which words of a text made it match a query."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from cl_core.analysis.explain import (
    ImageMap,
    TimeCurve,
    WordImportance,
    explain_audio,
    explain_image,
    explain_text,
)
from cl_core.embed.items import Failure, embed_paths
from cl_core.errors import ClensError
from cl_core.modality import AudioClip, ChannelStack, Modality
from cl_core.models.base import BaseModel
from cl_core.objectives import fuse
from cl_core.readers.registry import read_path
from cl_core.readers.thumbnail import composite
from cl_core.task import TaskState

MAX_JSON_SIDE = 128  # a map in JSON is pooled to at most this many cells a side


@dataclass
class Explained:
    """A map of what made `target` match the query, of the kind its modality calls for."""

    query: list[str]
    target: str
    modality: str
    image: ImageMap | None = None
    curve: TimeCurve | None = None
    words: WordImportance | None = None
    picture: Any = field(default=None, repr=False)  # the target as read (to draw the map over it)
    failures: list[Failure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query, "target": self.target, "modality": self.modality,
                               "failures": [f.to_dict() for f in self.failures]}
        if self.image is not None:
            m = self.image
            out["image"] = {"peak_xy": list(m.peak), "shape_hw": list(m.heat.shape), "windows": m.windows,
                            "window_sizes": list(m.window_sizes), "heat": _pooled(m.heat).round(5).tolist(),
                            "heat_cell_px": _cell(m.heat.shape)}
        if self.curve is not None:
            c = self.curve
            out["audio"] = {"peak_s": round(c.peak_s, 4), "window_s": round(c.window_s, 4),
                            "times_s": c.times.round(4).tolist(), "scores": c.scores.round(5).tolist()}
        if self.words is not None:
            w = self.words
            out["text"] = {"score": round(w.score, 5), "top": w.top(),
                           "words": [{"word": a, "importance": round(float(b), 5), "span": list(s)}
                                     for a, b, s in zip(w.words, w.importance, w.spans, strict=True)]}
        return out


def explain(model: BaseModel, target: str | Path | None = None, texts: tuple[str, ...] = (),
            files: tuple[str, ...] = (), target_text: str | None = None, state: TaskState | None = None) -> Explained:
    """Embed the query (texts and files, fused by their mean), read the target, and map its match."""
    state = state or TaskState()
    if not texts and not files:
        raise ClensError("give the query: --text T or --query FILE")
    if (target is None) == (target_text is None):
        raise ClensError("give one target: a file, or --target-text T")
    got = embed_paths(model, list(files), list(texts), state=state)
    sources = [it.source for it in got.items]
    if got.failures or not len(got.vectors):
        return Explained(sources, str(target or target_text), "", failures=list(got.failures))
    q = fuse(got.vectors)
    if target_text is not None:
        return Explained(sources, target_text, Modality.TEXT.value, words=explain_text(model, q, target_text, state))
    items = read_path(str(target))
    if not items:
        raise ClensError(f"{target}: nothing to explain in it")
    item = items[0]
    if item.modality not in model.modalities:
        raise ClensError(f"{target}: the model has no {item.modality.value} tower")
    out = Explained(sources, str(target), item.modality.value, picture=item.data)
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
        picture = explained.picture
        base = Image.fromarray(composite(picture)) if isinstance(picture, ChannelStack) else picture.convert("RGB")
        pic = _overlay(base, explained.image.heat, opacity)
        x, y = explained.image.peak
        ImageDraw.Draw(pic).ellipse((x - 4, y - 4, x + 4, y + 4), outline=(255, 255, 255), width=2)
    elif explained.curve is not None:
        pic = _curve_picture(explained.curve)
    else:
        raise ClensError("a text's word importances are printed or written as JSON (--json), not drawn")
    path = Path(out)
    with atomic_write(path) as fh:
        pic.save(fh, format="PNG")
    return path


LUT_POINTS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float64)


def colour_map(v: np.ndarray) -> np.ndarray:
    """[..., 3] uint8 colours of values in [0, 1] (an inferno-like ramp: dark = low, bright = high)."""
    x = np.clip(v, 0, 1) * (len(LUT_POINTS) - 1)
    i = np.minimum(x.astype(int), len(LUT_POINTS) - 2)
    f = (x - i)[..., None]
    return ((1 - f) * LUT_POINTS[i] + f * LUT_POINTS[i + 1]).astype(np.uint8)


def _overlay(base: Image.Image, heat: np.ndarray, opacity: float) -> Image.Image:
    lo, hi = float(heat.min()), float(heat.max())
    norm = (heat - lo) / max(hi - lo, 1e-12)
    colours = Image.fromarray(colour_map(norm), "RGB").resize(base.size)
    blended = Image.blend(base, colours, opacity)
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


def _cell(shape: tuple[int, ...]) -> int:
    return max(1, -(-max(shape) // MAX_JSON_SIDE))


def _pooled(heat: np.ndarray) -> np.ndarray:
    """The map averaged over cells so that neither side exceeds MAX_JSON_SIDE."""
    c = _cell(heat.shape)
    if c == 1:
        return heat
    h, w = heat.shape
    pad = np.pad(heat, ((0, (-h) % c), (0, (-w) % c)), mode="edge")
    return pad.reshape(pad.shape[0] // c, c, pad.shape[1] // c, c).mean(axis=(1, 3))
