"""Small pictures of gallery items for the results grid, drawn from the decoded item (the same readers,
allow-list and size limits as embedding): an image scaled down; a multichannel stack as a pseudocolour
composite of three channels (each stretched between its 1st and 99.5th percentile); audio as its waveform
envelope. Texts are shown as text and get none. Runs in a decoder process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from cl_core.atomic import atomic_write
from cl_core.errors import ReaderError
from cl_core.modality import AudioClip, ChannelStack, Item, Modality

# channels shown as red, green and blue: these names first when a stack has them, else its first three
COMPOSITE_PREFERENCE = (("panck", "cytokeratin", "ck"), ("cd8", "cd3", "cd68"), ("dapi", "hoechst", "nuclei"))


def composite(stack: ChannelStack, channels: tuple[int, int, int] | None = None) -> np.ndarray:
    """[H, W, 3] uint8 from three channels of a stack, each contrast-stretched on its own."""
    pixels = stack.pixels
    picks = channels or default_channels(stack)
    rgb = np.zeros((*pixels.shape[1:], 3), np.float32)
    for colour, c in enumerate(picks):
        if c < 0 or c >= len(pixels):
            continue
        ch = pixels[c].astype(np.float32)
        low, high = np.percentile(ch, (1.0, 99.5))
        rgb[..., colour] = np.clip((ch - low) / max(high - low, 1e-6), 0, 1)
    return (rgb * 255).astype(np.uint8)


# pseudocolours a channel can be shown in (additive: overlapping channels mix as light does)
PSEUDOCOLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "cyan": (0, 255, 255),
    "magenta": (255, 0, 255), "yellow": (255, 255, 0), "orange": (255, 128, 0), "white": (255, 255, 255)}
AUTO_PERCENTILES = (1.0, 99.5)  # contrast limits when none are set: these percentiles of the channel


@dataclass(frozen=True)
class ChannelLook:
    """How one channel is shown: its colour, and its contrast limits in the file's own units (None: auto, from
    the channel's percentiles in each picture). Written as "name|colour|low|high" where a spec is a string."""

    name: str
    colour: str = "white"  # a PSEUDOCOLOURS name or #rrggbb
    low: float | None = None
    high: float | None = None

    def rgb(self) -> tuple[int, int, int]:
        if self.colour in PSEUDOCOLOURS:
            return PSEUDOCOLOURS[self.colour]
        c = self.colour.lstrip("#")
        if len(c) != 6:
            raise ValueError(f"unknown colour {self.colour!r} (a name of {', '.join(PSEUDOCOLOURS)} or #rrggbb)")
        return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)

    def spec(self) -> str:
        def num(x: float | None) -> str:
            return "auto" if x is None else f"{x:g}"

        return f"{self.name}|{self.colour}|{num(self.low)}|{num(self.high)}"

    @classmethod
    def parse(cls, spec: str, position: int = 0) -> ChannelLook:
        """A spec, or a plain channel name (shown red, green, blue by its position: the three-channel picker)."""
        parts = spec.split("|")
        if len(parts) == 1:
            return cls(spec, ("red", "green", "blue", "white")[min(position, 3)])
        name, colour, low, high = (parts + ["auto", "auto"])[:4]
        return cls(name, colour or "white", None if low == "auto" else float(low),
                   None if high == "auto" else float(high))


def auto_limits(pixels: np.ndarray) -> tuple[float, float]:
    """A channel's automatic contrast limits: its AUTO_PERCENTILES."""
    low, high = np.percentile(pixels, AUTO_PERCENTILES)
    return float(low), float(high)


def blend(stack: ChannelStack, looks: Sequence[ChannelLook]) -> np.ndarray:
    """[H, W, 3] uint8: each look's channel stretched between its limits, times its colour, added and clipped.
    A look naming a channel the stack lacks (by name, aliases aside) is left out."""
    from cl_core.readers.channels import match_channels

    have = list(stack.channel_names or [f"channel {i}" for i in range(len(stack.pixels))])
    rgb = np.zeros((*stack.pixels.shape[1:], 3), np.float32)
    for look in looks:
        found = match_channels([look.name], have).indices
        if not look.name or not found:
            continue
        ch = stack.pixels[found[0]].astype(np.float32)
        auto = auto_limits(ch) if look.low is None or look.high is None else (0.0, 0.0)
        low = auto[0] if look.low is None else look.low
        high = auto[1] if look.high is None else look.high
        rgb += np.clip((ch - low) / max(high - low, 1e-6), 0, 1)[..., None] * (np.array(look.rgb()) / 255.0)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def default_channels(stack: ChannelStack) -> tuple[int, int, int]:
    return default_picks(stack.channel_names or (), len(stack.pixels))


def default_channel_names(names: Sequence[str]) -> tuple[str, str, str]:
    """The composite a panel offers first for these channel names ("" where a colour stays dark)."""
    picks = default_picks(names, len(names))
    return tuple(names[i] if i >= 0 else "" for i in picks)  # type: ignore[return-value]


def channels_by_name(stack: ChannelStack, names: Sequence[str]) -> tuple[int, int, int]:
    """The stack's channels named for red, green and blue (case and aliases aside: cl_core.readers.channels);
    -1 (dark) where it lacks one."""
    from cl_core.readers.channels import match_channels

    have = list(stack.channel_names or ())
    picks = [(match_channels([n], have).indices or (-1,))[0] if n else -1 for n in list(names)[:3]]
    picks += [-1] * (3 - len(picks))
    return picks[0], picks[1], picks[2]


def default_picks(channel_names: Sequence[str], count: int) -> tuple[int, int, int]:
    names = [n.lower() for n in channel_names]
    picks: list[int] = []
    for wanted in COMPOSITE_PREFERENCE:  # names in order of preference; a whole-name match before a part
        found = next((i for w in wanted for i, n in enumerate(names) if n == w and i not in picks), None)
        if found is None:
            found = next((i for w in wanted for i, n in enumerate(names) if w in n and i not in picks), None)
        if found is not None:
            picks.append(found)
    rest = [i for i in range(count) if i not in picks]
    picks += rest[: 3 - len(picks)]
    while len(picks) < 3:
        picks.append(-1)  # fewer than three channels: that colour stays dark
    return picks[0], picks[1], picks[2]


def waveform_picture(clip: AudioClip, size: int) -> np.ndarray:
    """The waveform's envelope (peak per column), dark on light."""
    width, height = size, max(8, size // 2)
    picture = np.full((height, width, 3), 245, np.uint8)
    wave = clip.waveform
    if not len(wave):
        return picture
    edges = np.linspace(0, len(wave), width + 1).astype(np.int64)
    peaks = np.array([np.abs(wave[a:b]).max() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)])
    peaks = peaks / max(float(peaks.max()), 1e-6)
    mid = height // 2
    for x, p in enumerate(peaks):
        half = max(1, int(p * (height // 2 - 1)))
        picture[mid - half: mid + half, x] = (40, 90, 160)
    return picture


def render(item: Item, size: int, channels: Sequence[str] | None = None) -> Image.Image | None:
    """`channels`: how a stack is shown — ChannelLook specs, or plain names shown as red, green and blue
    (default: a sensible three, each auto-contrasted)."""
    if item.modality is Modality.IMAGE:
        picture = item.data.convert("RGB").copy()
    elif item.modality is Modality.MULTICHANNEL:
        looks = [ChannelLook.parse(c, i) for i, c in enumerate(channels or ())]
        picture = Image.fromarray(blend(item.data, looks) if looks else composite(item.data))
    elif item.modality is Modality.AUDIO:
        return Image.fromarray(waveform_picture(item.data, size))
    else:
        return None
    picture.thumbnail((size, size))
    return picture


def write_thumbnail(path: str, size: int, out: str, channels: Sequence[str] | None = None) -> str | None:
    """Decode `path`, draw its thumbnail into `out` (PNG). Returns None, or why there is none."""
    from cl_core.readers import read_path

    try:
        items = read_path(path)
    except ReaderError as exc:
        return exc.reason
    picture = render(items[0], size, channels) if items else None
    if picture is None:
        return "no picture for this kind of item"
    with atomic_write(out) as fh:
        picture.save(fh, format="PNG")
    return None
