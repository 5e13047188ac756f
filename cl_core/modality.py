"""The modalities a model can embed, and the decoded items readers produce for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np


class Modality(StrEnum):
    IMAGE = "image"
    TEXT = "text"
    AUDIO = "audio"
    MULTICHANNEL = "multichannel"  # tissue mIF patches, multispectral and SAR stacks: [C, H, W]

    @classmethod
    def parse(cls, value: str) -> Modality:
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown modality {value!r}; expected one of {names}") from None


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 waveform in [-1, 1] at `sample_rate` Hz."""

    waveform: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.waveform) / float(self.sample_rate)


@dataclass(frozen=True)
class ChannelStack:
    """Multichannel image as float32 [C, H, W]; channel names when the file carries them."""

    pixels: np.ndarray
    channel_names: tuple[str, ...] | None = None


@dataclass
class Item:
    """One decoded input: where it came from, its modality, and its data.

    data is a PIL RGB image (image), str (text), AudioClip (audio) or ChannelStack (multichannel).
    """

    source: str
    modality: Modality
    data: Any
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.modality is Modality.TEXT:
            text = str(self.data)
            return text if len(text) <= 60 else text[:57] + "..."
        return self.source
