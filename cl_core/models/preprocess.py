"""Preprocessing that travels with the weights: image resize/crop/normalise, channel stacks, audio.

Image transforms follow torchvision's semantics (what open_clip uses) exactly, without torchvision:
shortest-side resize with `int(size * long / short)`, PIL bicubic, and center-crop offsets
`int(round((h - crop) / 2))`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from PIL import Image

from cl_core.errors import ReaderError
from cl_core.modality import AudioClip, ChannelStack, Item
from cl_core.models.base import Prepared

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
             "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


@dataclass(frozen=True)
class ImagePreprocess:
    size: int = 224
    mean: tuple[float, ...] = OPENAI_MEAN
    std: tuple[float, ...] = OPENAI_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"  # shortest (resize + center crop) | squash | longest (pad)
    fill_color: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ImagePreprocess:
        d = dict(d or {})
        size = d.get("size", d.get("image_size", 224))
        if isinstance(size, list | tuple):
            size = int(size[0])
        kw: dict[str, Any] = {k: d[k] for k in ("interpolation", "resize_mode", "fill_color") if k in d}
        if "mean" in d:
            kw["mean"] = tuple(float(x) for x in d["mean"])
        if "std" in d:
            kw["std"] = tuple(float(x) for x in d["std"])
        if kw.get("interpolation", "bicubic") not in _RESAMPLE:
            raise ValueError(f"unknown interpolation {kw['interpolation']!r}")
        return cls(size=int(size), **kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resize_crop(self, img: Image.Image) -> Image.Image:
        resample = _RESAMPLE[self.interpolation]
        s = self.size
        w, h = img.size
        if self.resize_mode == "squash":
            return img.resize((s, s), resample)
        if self.resize_mode == "longest":
            scale = s / max(w, h)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            canvas = Image.new("RGB", (s, s), (self.fill_color,) * 3)
            canvas.paste(img.resize((nw, nh), resample), ((s - nw) // 2, (s - nh) // 2))
            return canvas
        if (w <= h and w == s) or (h <= w and h == s):
            resized = img
        elif w <= h:
            resized = img.resize((s, int(s * h / w)), resample)
        else:
            resized = img.resize((int(s * w / h), s), resample)
        rw, rh = resized.size
        top = int(round((rh - s) / 2.0))
        left = int(round((rw - s) / 2.0))
        return resized.crop((left, top, left + s, top + s))

    def __call__(self, img: Image.Image) -> torch.Tensor:
        arr = np.asarray(self.resize_crop(img.convert("RGB")), dtype=np.float32) / 255.0
        t = torch.from_numpy(arr).permute(2, 0, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32)[:, None, None]
        std = torch.tensor(self.std, dtype=torch.float32)[:, None, None]
        return (t - mean) / std


SCALES = ("percentile", "asinh", "none")


ALIAS_NOTE = "names match whatever their case and through common aliases: `clens tissue channels` shows how"


@dataclass(frozen=True)
class StackPreprocess:
    """Channel stacks: pick the model's channels by name, scale, resize to size x size, standardise."""

    size: int = 64
    channels: tuple[str, ...] = ()  # expected channel names, in model order (empty: any, count must match)
    in_channels: int = 3
    # percentile: 1-99% of each channel of each image to [0, 1] (exposure-free, but counts by brightness are lost)
    # asinh: arcsinh(x / cofactor), the cytometry transform: absolute intensities kept, bright tails compressed
    # none: as stored
    scale: str = "percentile"
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())
    cofactor: float = 150.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StackPreprocess:
        chans = tuple(d.get("channels", ()))
        scale = str(d.get("scale", "percentile"))
        if scale not in SCALES:
            raise ValueError(f"unknown channel scale {scale!r} (one of {', '.join(SCALES)})")
        return cls(size=int(d.get("size", 64)), channels=chans,
                   in_channels=int(d.get("in_channels", len(chans) or 3)), scale=scale,
                   mean=tuple(d.get("mean", ())), std=tuple(d.get("std", ())),
                   cofactor=float(d.get("cofactor", 150.0)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def select(self, item: Item) -> np.ndarray:
        stack: ChannelStack = item.data
        px = stack.pixels
        if self.channels and stack.channel_names:
            from cl_core.readers.channels import match_channels

            found = match_channels(self.channels, stack.channel_names)
            if found.missing:
                raise ReaderError(item.source, f"lacks channel(s) {', '.join(found.missing)} the model needs "
                                               f"(file has: {', '.join(stack.channel_names)}; {ALIAS_NOTE})")
            px = px[list(found.indices)]
        elif px.shape[0] != self.in_channels:
            raise ReaderError(item.source, f"has {px.shape[0]} channels, the model takes {self.in_channels}"
                              + (f" ({', '.join(self.channels)})" if self.channels else ""))
        return px

    def __call__(self, item: Item) -> torch.Tensor:
        px = self.select(item).astype(np.float32, copy=False)
        if self.scale == "percentile":
            flat = px.reshape(px.shape[0], -1)
            lo = np.percentile(flat, 1, axis=1)[:, None, None]
            hi = np.percentile(flat, 99, axis=1)[:, None, None]
            px = np.clip((px - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0)
        elif self.scale == "asinh":
            px = np.arcsinh(px / self.cofactor)
        t = torch.from_numpy(np.ascontiguousarray(px))[None]
        if t.shape[-1] != self.size or t.shape[-2] != self.size:
            t = torch.nn.functional.interpolate(t, size=(self.size, self.size), mode="bilinear",
                                                align_corners=False, antialias=True)
        t = t[0]
        if self.mean and self.std:
            t = (t - torch.tensor(self.mean)[:, None, None]) / torch.tensor(self.std)[:, None, None]
        return t


def resample(clip: AudioClip, rate: int) -> np.ndarray:
    """Polyphase resampling to `rate` Hz (deterministic; exact rational ratio)."""
    if clip.sample_rate == rate:
        return clip.waveform
    ratio = Fraction(rate, clip.sample_rate).limit_denominator(1000)
    from scipy.signal import (
        resample_poly,  # imported on first resampling: scipy.signal costs ~0.4 s to import
    )

    return resample_poly(clip.waveform, ratio.numerator, ratio.denominator).astype(np.float32)


def windows(wave: np.ndarray, window: int) -> list[np.ndarray]:
    """Split into consecutive non-overlapping windows; the tail is kept as a shorter last window.

    Fixed boundaries (no random crops) make the embedding of a file independent of the run and the
    batch it is in.
    """
    if len(wave) <= window:
        return [wave]
    out = [wave[i:i + window] for i in range(0, len(wave), window)]
    if len(out) > 1 and len(out[-1]) < window // 4:
        out.pop()  # a sliver of tail would weigh as much as a full window in the mean
    return out


@dataclass(frozen=True)
class AudioPreprocess:
    """Log-mel front end for native audio towers."""

    sample_rate: int = 16000
    window_seconds: float = 2.0
    n_fft: int = 512
    hop: int = 160
    n_mels: int = 64

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioPreprocess:
        return cls(**{k: type(getattr(cls, k))(v) for k, v in d.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))

    def split(self, clip: AudioClip) -> list[np.ndarray]:
        wave = resample(clip, self.sample_rate)
        out = []
        for w in windows(wave, self.window_samples):
            if len(w) < self.window_samples:
                w = np.pad(w, (0, self.window_samples - len(w)))
            out.append(w)
        return out

    def log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        """[B, samples] -> [B, 1, n_mels, frames]."""
        spec = torch.stft(waves, self.n_fft, self.hop, window=torch.hann_window(self.n_fft, device=waves.device),
                          return_complex=True).abs() ** 2
        fb = mel_filterbank(self.n_mels, self.n_fft, self.sample_rate).to(waves.device)
        mel = torch.einsum("mf,bft->bmt", fb, spec)
        return torch.log(mel + 1e-6)[:, None]


def mel_filterbank(n_mels: int, n_fft: int, rate: int) -> torch.Tensor:
    """HTK-style triangular mel filters, [n_mels, n_fft // 2 + 1]."""
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    points = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(rate / 2)), n_mels + 2))
    fb = np.zeros((n_mels, len(freqs)), np.float32)
    for i in range(n_mels):
        lo, mid, hi = points[i], points[i + 1], points[i + 2]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[i] = np.maximum(0, np.minimum(up, down))
    return torch.from_numpy(fb)


# ---- per-item preparers: picklable, weight-free, run in decoder worker processes (ItemPreparer) ----------

@dataclass(frozen=True)
class ImageItemPreparer:
    pre: ImagePreprocess
    key: str = "pixels"

    def __call__(self, item: Item) -> Prepared:
        return Prepared({self.key: self.pre(item.data)[None]})


@dataclass(frozen=True)
class StackItemPreparer:
    pre: StackPreprocess

    def __call__(self, item: Item) -> Prepared:
        return Prepared({"pixels": self.pre(item)[None]})


@dataclass(frozen=True)
class AudioItemPreparer:
    pre: AudioPreprocess

    def __call__(self, item: Item) -> Prepared:
        waves = self.pre.split(item.data)
        return Prepared({"waves": torch.from_numpy(np.stack(waves))}, [len(waves)])


def prepare_each(preparer: Callable[[Item], Prepared], items: list[Item]) -> Prepared:
    """A batch prepared item by item: the same tensors whether items were prepared here or in a worker."""
    return Prepared.concat([preparer(it) for it in items])
