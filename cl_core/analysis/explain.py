"""Where, when and which words: maps of what made a match, for any model that embeds.

Every method here only calls `model.encode`, so it works the same for native, Hugging Face and open_clip
checkpoints (no gradients, no hooks into an architecture):
- image and channel stacks: windows slid over the picture at the model's own input size and at a smaller
  scale, each embedded and scored against the query; a pixel's value is the mean score of the windows that
  cover it. Inside the best few windows, small patches are then covered up one at a time (occlusion): where
  the score drops most is where the match lives. A picture larger than the input is tiled, never squashed
  into one input.
- audio: windows of the model's clip length slid over the sound; a moment's value is the mean score of the
  windows that cover it.
- text: each word left out in turn; its importance is how much the score drops without it.
All run in batches with progress and cancel (TaskState), and return plain arrays a front end can draw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from cl_core.modality import AudioClip, ChannelStack, Item, Modality
from cl_core.models.base import BaseModel
from cl_core.task import TaskState

SCALES = (1.0, 0.75)  # window sizes, as fractions of the model's input size
STRIDE = 4  # window positions per input size along each axis (stride = size / STRIDE)
AUDIO_HOP = 0.1  # seconds between audio windows, as a fraction of the window
MAX_WINDOWS = 4096  # more would take minutes on a CPU: the stride grows instead
REFINE = 3  # best windows refined by occlusion
OCCLUDE = 6  # occluding patch = window side / OCCLUDE
WORD = re.compile(r"\S+")


@dataclass
class ImageMap:
    """Mean window score per pixel [H, W], the peak (x, y), and the windows scored."""

    heat: np.ndarray
    peak: tuple[int, int]
    windows: int
    window_sizes: tuple[int, ...]


@dataclass
class TimeCurve:
    """Mean window score per time step, the times (s) of the steps, and the peak time."""

    times: np.ndarray
    scores: np.ndarray
    peak_s: float
    window_s: float


@dataclass
class WordImportance:
    """Each word of the text, the drop in score without it, and the full text's score."""

    words: list[str]
    importance: np.ndarray
    score: float
    spans: list[tuple[int, int]] = field(default_factory=list)  # character spans of the words in the text

    def top(self) -> str:
        return self.words[int(np.argmax(self.importance))] if self.words else ""


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
    total = np.zeros((h, w), np.float64)
    count = np.zeros((h, w), np.float64)
    window_scores: list[float] = []
    for start in range(0, len(boxes), batch):
        state.check_cancelled()
        chunk = boxes[start:start + batch]
        items = [Item(f"window {t},{left}", modality, _crop(picture, t, left, side)) for t, left, side in chunk]
        scores = model.encode(modality, items) @ q
        window_scores.extend(float(v) for v in scores)
        for (t, left, side), s in zip(chunk, scores, strict=True):
            total[t:t + side, left:left + side] += s
            count[t:t + side, left:left + side] += 1
        state.set_progress(min(start + batch, len(boxes)), len(boxes), "scoring windows")
    heat = total / np.maximum(count, 1)
    if refine:
        order = np.argsort(-np.array(window_scores))[:refine]
        fine = np.zeros((h, w), np.float64)
        for n, i in enumerate(order):
            state.check_cancelled()
            t, left, side = boxes[int(i)]
            drop = _occlusion(model, modality, picture, (t, left, side), q, float(window_scores[int(i)]), batch)
            fine[t:t + side, left:left + side] = np.maximum(fine[t:t + side, left:left + side], drop)
            state.set_progress(n + 1, len(order), "occluding the best windows")
        if fine.max() > 0:  # where leaving pixels out hurts the match most, on top of the coarse map
            lo, hi = float(heat.min()), float(heat.max())
            heat = 0.25 * (heat - lo) / max(hi - lo, 1e-9) + fine / fine.max()
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return ImageMap(heat.astype(np.float32), (int(x), int(y)), len(boxes), tuple(sorted({b[2] for b in boxes})))


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
    """When in `clip` the query matches: mean score of the sliding windows covering each moment."""
    state = state or TaskState()
    window = audio_window(model)
    n = len(clip.waveform)
    span = max(1, min(n, round(window * clip.sample_rate)))
    hop = max(1, round(span * AUDIO_HOP))
    starts = list(range(0, n - span + 1, hop)) or [0]
    if starts[-1] != n - span:
        starts.append(max(0, n - span))
    q = _unit(query)
    step = max(1, hop // 4)
    grid = np.arange(0, n, step)
    total = np.zeros(len(grid))
    count = np.zeros(len(grid))
    for b in range(0, len(starts), batch):
        state.check_cancelled()
        chunk = starts[b:b + batch]
        items = [Item(f"window {s}", Modality.AUDIO, AudioClip(clip.waveform[s:s + span], clip.sample_rate)) for s in chunk]
        scores = model.encode(Modality.AUDIO, items) @ q
        for s, sc in zip(chunk, scores, strict=True):
            covered = (grid >= s) & (grid < s + span)
            total[covered] += sc
            count[covered] += 1
        state.set_progress(min(b + batch, len(starts)), len(starts), "scoring windows")
    curve = total / np.maximum(count, 1)
    times = grid / clip.sample_rate
    return TimeCurve(times.astype(np.float32), curve.astype(np.float32), float(times[int(np.argmax(curve))]),
                     span / clip.sample_rate)


def explain_text(model: BaseModel, query: np.ndarray, text: str, state: TaskState | None = None) -> WordImportance:
    """Which words of `text` carry its match with the query: the score's drop when each word is left out."""
    state = state or TaskState()
    spans = [(m.start(), m.end()) for m in WORD.finditer(text)]
    words = [text[a:b] for a, b in spans]
    variants = [text] + [text[:a] + text[b:] for a, b in spans]
    q = _unit(query)
    scores = model.encode(Modality.TEXT, [Item(f"variant {i}", Modality.TEXT, v) for i, v in enumerate(variants)],
                          state=state) @ q
    return WordImportance(words, (scores[0] - scores[1:]).astype(np.float32), float(scores[0]), spans)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)
