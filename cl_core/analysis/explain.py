"""Where, when and which words: maps of what made a match, for any model that embeds.

Every method here only calls `model.encode`, so it works the same for native, Hugging Face and open_clip
checkpoints (no gradients, no hooks into an architecture):
- image and channel stacks: windows slid over the picture at the model's own input size and at a smaller
  scale, each embedded and scored against the query; a pixel's value is the mean score of the windows that
  cover it. Inside the best few windows, small patches are then covered up one at a time (occlusion): where
  the score drops most is where the match lives. A picture larger than the input is tiled, never squashed
  into one input.
- audio: windows of the model's clip length slid over the sound; a moment's value is the mean score of the
  windows that cover it. A sound shorter than two windows has each tenth silenced in turn instead (occlusion).
- text: each word left out in turn; its importance is how much the score drops without it.
All run in batches with progress and cancel (TaskState), and return plain arrays a front end can draw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from cl_core.errors import Failure
from cl_core.modality import AudioClip, ChannelStack, Item, Modality
from cl_core.models.base import BaseModel
from cl_core.task import TaskState

SCALES = (1.0, 0.75)  # window sizes, as fractions of the model's input size
STRIDE = 4  # window positions per input size along each axis (stride = size / STRIDE)
AUDIO_HOP = 0.1  # seconds between audio windows, as a fraction of the window
SILENCE_PARTS = 10  # a sound shorter than two windows: each tenth of it silenced in turn
MAX_WINDOWS = 4096  # more would take minutes on a CPU: the stride grows instead
MAP_SIDE = 1024  # a map is kept at most this many cells a side (a 4096-px picture: one cell per 4x4 pixels)
REFINE = 3  # best windows refined by occlusion
OCCLUDE = 6  # occluding patch = window side / OCCLUDE
MAX_WORDS = 512  # a text's first words only: no text tower reads further, and each word costs one embedding
MAX_JSON_SIDE = 128  # a map in JSON is pooled to at most this many cells a side
WORD = re.compile(r"\S+")


@dataclass
class ImageMap:
    """Mean window score per pixel [H, W], the peak (x, y), and the windows scored."""

    heat: np.ndarray
    peak: tuple[int, int]
    windows: int
    window_sizes: tuple[int, ...]
    cell: int = 1  # pixels per map cell along each side (1 up to MAP_SIDE pixels)


@dataclass
class TimeCurve:
    """Per time step: the mean score of the windows covering it, or the mean drop in score when it is silenced
    (`method`); the times (s) of the steps, the peak time and the length of a window or silenced part."""

    times: np.ndarray
    scores: np.ndarray
    peak_s: float
    window_s: float
    method: str = "windows"  # "windows": mean score of the windows; "silenced": mean drop when silenced


@dataclass
class WordImportance:
    """Each word of the text, the drop in score without it, and the full text's score."""

    words: list[str]
    importance: np.ndarray
    score: float
    spans: list[tuple[int, int]] = field(default_factory=list)  # character spans of the words in the text

    def top(self) -> str:
        return self.words[int(np.argmax(self.importance))] if self.words else ""


@dataclass
class Explained:
    """A map of what made `target` match the query, of the kind its modality calls for, and what it was
    computed with (the model's fingerprint: a window refuses a map made by a model no longer open)."""

    query: list[str]
    target: str
    modality: str
    image: ImageMap | None = None
    curve: TimeCurve | None = None
    words: WordImportance | None = None
    picture: Any = field(default=None, repr=False)  # the target as read (to draw the map over it)
    failures: list[Failure] = field(default_factory=list)
    model_fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query, "target": self.target, "modality": self.modality,
                               "failures": [f.to_dict() for f in self.failures]}
        if self.image is not None:
            m = self.image
            c = _json_cell(m.heat.shape)
            out["image"] = {"peak_xy": list(m.peak), "shape_hw": list(_picture_hw(self)), "windows": m.windows,
                            "window_sizes": list(m.window_sizes), "heat": pooled(m.heat, c).round(5).tolist(),
                            "heat_cell_px": c * m.cell}
        if self.curve is not None:
            t = self.curve
            out["audio"] = {"peak_s": round(t.peak_s, 4), "window_s": round(t.window_s, 4), "method": t.method,
                            "times_s": t.times.round(4).tolist(), "scores": t.scores.round(5).tolist()}
        if self.words is not None:
            w = self.words
            out["text"] = {"score": round(w.score, 5), "top": w.top(),
                           "words": [{"word": a, "importance": round(float(b), 5), "span": list(s)}
                                     for a, b, s in zip(w.words, w.importance, w.spans, strict=True)]}
        return out


def _picture_hw(ex: Explained) -> tuple[int, int]:
    pic = ex.picture
    if isinstance(pic, ChannelStack):
        return int(pic.pixels.shape[1]), int(pic.pixels.shape[2])
    if isinstance(pic, Image.Image):
        return pic.height, pic.width
    assert ex.image is not None
    return ex.image.heat.shape[0] * ex.image.cell, ex.image.heat.shape[1] * ex.image.cell


def _json_cell(shape: tuple[int, ...]) -> int:
    return max(1, -(-max(shape) // MAX_JSON_SIDE))


def pooled(heat: np.ndarray, c: int) -> np.ndarray:
    """The map averaged over c x c cells (edges padded with their own values)."""
    if c == 1:
        return heat
    h, w = heat.shape
    pad = np.pad(heat, ((0, (-h) % c), (0, (-w) % c)), mode="edge")
    return pad.reshape(pad.shape[0] // c, c, pad.shape[1] // c, c).mean(axis=(1, 3))


def spectrogram(clip: AudioClip, bins: int = 128, columns: int = 1024) -> np.ndarray:
    """[bins, T] log power (dB) of the sound, at most `columns` frames: a picture to draw the curve over."""
    x = np.asarray(clip.waveform, np.float32)
    n_fft = 2 * (bins - 1)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    hop = max(n_fft // 4, -(-(len(x) - n_fft) // max(1, columns - 1)))
    starts = np.arange(0, len(x) - n_fft + 1, hop)
    window = np.hanning(n_fft).astype(np.float32)
    out = np.empty((bins, len(starts)), np.float32)
    for i in range(0, len(starts), 256):  # in blocks: an hour of sound never makes one huge frame matrix
        s = starts[i:i + 256]
        frames = x[s[:, None] + np.arange(n_fft)[None, :]] * window
        out[:, i:i + len(s)] = (10 * np.log10(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-10)).T
    return out


def input_size(model: BaseModel, modality: Modality = Modality.IMAGE) -> int:
    """The side of the model's square input in pixels (its preprocessing's crop or size; 224 if unsaid)."""
    prep: dict[str, Any] = model.preprocessing().get(modality.value, {}) or {}
    for key in ("crop_size", "size"):
        v = prep.get(key)
        if isinstance(v, int) and v > 0:
            return v
        if isinstance(v, dict):
            for k in ("height", "shortest_edge", "width"):
                if isinstance(v.get(k), int) and v[k] > 0:
                    return int(v[k])
    return 224


def audio_window(model: BaseModel) -> float:
    """Seconds of sound the model embeds at once (its preprocessing's window; 10 s if unsaid, as CLAP)."""
    prep: dict[str, Any] = model.preprocessing().get("audio", {}) or {}
    if isinstance(prep.get("window_seconds"), int | float) and prep["window_seconds"] > 0:
        return float(prep["window_seconds"])
    if isinstance(prep.get("window_samples"), int) and isinstance(prep.get("sample_rate"), int):
        return prep["window_samples"] / prep["sample_rate"]
    return 10.0


def _windows(h: int, w: int, size: int) -> list[tuple[int, int, int]]:
    """(top, left, side) of square windows of `size` sliding over an h x w picture (one, clipped, if smaller)."""
    side = min(size, h, w)
    step = max(1, size // STRIDE)
    while ((h - side) // step + 1) * ((w - side) // step + 1) > MAX_WINDOWS:
        step *= 2
    tops = list(range(0, h - side + 1, step)) or [0]
    lefts = list(range(0, w - side + 1, step)) or [0]
    if tops[-1] != h - side:
        tops.append(h - side)
    if lefts[-1] != w - side:
        lefts.append(w - side)
    return [(t, left, side) for t in tops for left in lefts]


def explain_image(model: BaseModel, query: np.ndarray, picture: Image.Image | ChannelStack,
                  state: TaskState | None = None, batch: int = 64, refine: int = REFINE) -> ImageMap:
    """Where in `picture` the query matches: the mean score of the sliding windows covering each pixel, then,
    inside the `refine` best windows, how much the score drops when each small patch is covered up."""
    state = state or TaskState()
    stack = isinstance(picture, ChannelStack)
    modality = Modality.MULTICHANNEL if stack else Modality.IMAGE
    if stack:
        assert isinstance(picture, ChannelStack)
        _, h, w = picture.pixels.shape
    else:
        assert isinstance(picture, Image.Image)
        picture = picture.convert("RGB")
        w, h = picture.size
    size = input_size(model, modality)
    boxes = [b for s in SCALES for b in _windows(h, w, max(8, round(size * s)))]
    boxes = list(dict.fromkeys(boxes))
    q = _unit(query)
    cell = max(1, -(-max(h, w) // MAP_SIDE))
    shape = (-(-h // cell), -(-w // cell))
    total = np.zeros(shape, np.float64)
    count = np.zeros(shape, np.float64)
    window_scores: list[float] = []
    for start in range(0, len(boxes), batch):
        state.check_cancelled()
        chunk = boxes[start:start + batch]
        items = [Item(f"window {t},{left}", modality, _crop(picture, t, left, side)) for t, left, side in chunk]
        scores = model.encode(modality, items) @ q
        window_scores.extend(float(v) for v in scores)
        for (t, left, side), s in zip(chunk, scores, strict=True):
            ys, xs = _cells(t, side, cell), _cells(left, side, cell)
            total[ys, xs] += s
            count[ys, xs] += 1
        state.set_progress(min(start + batch, len(boxes)), len(boxes), "scoring windows")
    heat = total / np.maximum(count, 1)
    if refine:
        order = np.argsort(-np.array(window_scores))[:refine]
        fine = np.zeros(shape, np.float64)
        for n, i in enumerate(order):
            state.check_cancelled()
            t, left, side = boxes[int(i)]
            drop = _occlusion(model, modality, picture, (t, left, side), q, float(window_scores[int(i)]), batch)
            ys, xs = _cells(t, side, cell), _cells(left, side, cell)
            pooled = _pool(drop, cell, t, left, (ys.stop - ys.start, xs.stop - xs.start))
            fine[ys, xs] = np.maximum(fine[ys, xs], pooled)
            state.set_progress(n + 1, len(order), "occluding the best windows")
        if fine.max() > 0:  # where leaving pixels out hurts the match most, on top of the coarse map
            lo, hi = float(heat.min()), float(heat.max())
            heat = 0.25 * (heat - lo) / max(hi - lo, 1e-9) + fine / fine.max()
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    peak = (min(w - 1, int(x) * cell + cell // 2), min(h - 1, int(y) * cell + cell // 2))
    return ImageMap(heat.astype(np.float32), peak, len(boxes), tuple(sorted({b[2] for b in boxes})), cell)


def _cells(start: int, side: int, cell: int) -> slice:
    """The map cells a span of pixels [start, start + side) touches."""
    return slice(start // cell, -(-(start + side) // cell))


def _pool(drop: np.ndarray, cell: int, top: int, left: int, shape: tuple[int, int]) -> np.ndarray:
    """A window's per-pixel occlusion map averaged into the map's cells (aligned to the picture's grid)."""
    if cell == 1:
        return drop
    pad_t, pad_l = top % cell, left % cell
    h, w = shape[0] * cell, shape[1] * cell
    canvas = np.full((h, w), np.nan)
    canvas[pad_t:pad_t + drop.shape[0], pad_l:pad_l + drop.shape[1]] = drop
    with np.errstate(invalid="ignore"):
        out = np.nanmean(canvas.reshape(shape[0], cell, shape[1], cell), axis=(1, 3))
    return np.nan_to_num(out)


def _occlusion(model: BaseModel, modality: Modality, picture: Image.Image | ChannelStack,
               box: tuple[int, int, int], q: np.ndarray, base: float, batch: int) -> np.ndarray:
    """[side, side]: how much the window's score drops when a patch around each pixel is filled with the
    window's typical (median) value, averaged over the patches covering the pixel."""
    t, left, side = box
    window = _crop(picture, t, left, side)
    arr = window.pixels if isinstance(window, ChannelStack) else np.asarray(window, np.float32)
    fill = np.median(arr.reshape(arr.shape[0], -1), axis=1)[:, None, None] if isinstance(window, ChannelStack) \
        else np.median(arr.reshape(-1, arr.shape[-1]), axis=0)
    patch = max(2, side // OCCLUDE)
    step = max(1, patch // 2)
    spots = [(y, x) for y in range(0, side - patch + 1, step) for x in range(0, side - patch + 1, step)]
    drop = np.zeros((side, side))
    count = np.zeros((side, side))
    for b in range(0, len(spots), batch):
        items = []
        for y, x in spots[b:b + batch]:
            a = arr.copy()
            if isinstance(window, ChannelStack):
                a[:, y:y + patch, x:x + patch] = fill
                items.append(Item("occluded", modality, ChannelStack(a, window.channel_names)))
            else:
                a[y:y + patch, x:x + patch] = fill
                items.append(Item("occluded", modality, Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")))
        scores = model.encode(modality, items) @ q
        for (y, x), sc in zip(spots[b:b + batch], scores, strict=True):
            drop[y:y + patch, x:x + patch] += base - sc
            count[y:y + patch, x:x + patch] += 1
    return np.clip(drop / np.maximum(count, 1), 0, None)


def _crop(picture: Image.Image | ChannelStack, top: int, left: int, side: int) -> Image.Image | ChannelStack:
    if isinstance(picture, ChannelStack):
        return ChannelStack(np.ascontiguousarray(picture.pixels[:, top:top + side, left:left + side]),
                            picture.channel_names)
    return picture.crop((left, top, left + side, top + side))


def explain_audio(model: BaseModel, query: np.ndarray, clip: AudioClip, state: TaskState | None = None,
                  batch: int = 64) -> TimeCurve:
    """When in `clip` the query matches. A sound at least twice the model's clip length: windows of that length
    slid along it, a moment's value the mean score of the windows covering it. A shorter one (one window would
    say nothing about when): each tenth of it silenced in turn, a moment's value the mean drop in score when it
    is silent (occlusion)."""
    state = state or TaskState()
    q = _unit(query)
    wave, rate = np.asarray(clip.waveform, np.float32), clip.sample_rate
    n = len(wave)
    span = max(1, round(audio_window(model) * rate))
    if n >= 2 * span:
        method, hop = "windows", max(1, round(span * AUDIO_HOP))
        base = 0.0
    else:
        method, span = "silenced", max(1, n // SILENCE_PARTS)
        hop = max(1, span // 2)
        base = float(model.encode(Modality.AUDIO, [Item("whole", Modality.AUDIO, clip)])[0] @ q)
    starts = list(range(0, n - span + 1, hop)) or [0]
    if starts[-1] != n - span:
        starts.append(max(0, n - span))

    def variant(s: int) -> AudioClip:
        if method == "windows":
            return AudioClip(wave[s:s + span], rate)
        silent = wave.copy()
        silent[s:s + span] = 0.0
        return AudioClip(silent, rate)

    step = max(1, hop // 4)
    grid = np.arange(0, n, step)
    total = np.zeros(len(grid) + 1)
    count = np.zeros(len(grid) + 1)
    for b in range(0, len(starts), batch):
        state.check_cancelled()
        chunk = starts[b:b + batch]
        items = [Item(f"{method} {s}", Modality.AUDIO, variant(s)) for s in chunk]
        scores = model.encode(Modality.AUDIO, items) @ q
        values = scores if method == "windows" else base - scores
        first = np.searchsorted(grid, chunk)  # the grid steps each window covers: [first, last)
        last = np.searchsorted(grid, np.asarray(chunk) + span)
        np.add.at(total, first, values)
        np.add.at(total, last, -values)
        np.add.at(count, first, 1)
        np.add.at(count, last, -1)
        state.set_progress(min(b + batch, len(starts)), len(starts), f"scoring {method} parts")
    total, count = np.cumsum(total)[:-1], np.cumsum(count)[:-1]
    curve = total / np.maximum(count, 1)
    times = grid / rate
    return TimeCurve(times.astype(np.float32), curve.astype(np.float32), float(times[int(np.argmax(curve))]),
                     span / rate, method)


def explain_text(model: BaseModel, query: np.ndarray, text: str, state: TaskState | None = None) -> WordImportance:
    """Which words of `text` carry its match with the query: the score's drop when each word is left out."""
    state = state or TaskState()
    spans = [(m.start(), m.end()) for _, m in zip(range(MAX_WORDS), WORD.finditer(text), strict=False)]
    if spans:
        text = text[:spans[-1][1]]
    words = [text[a:b] for a, b in spans]
    variants = [text] + [text[:a] + text[b:] for a, b in spans]
    q = _unit(query)
    scores = model.encode(Modality.TEXT, [Item(f"variant {i}", Modality.TEXT, v) for i, v in enumerate(variants)],
                          state=state) @ q
    return WordImportance(words, (scores[0] - scores[1:]).astype(np.float32), float(scores[0]), spans)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)
