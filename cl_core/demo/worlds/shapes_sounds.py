"""Shapes & sounds: rendered objects, a sound for each, and captions in varied phrasing.

The mapping, fixed and documented so that what a model learns can be checked:

| attribute | picture (64 x 64 RGB)                 | sound (1 s, 8 kHz mono)                              |
|-----------|---------------------------------------|------------------------------------------------------|
| shape     | circle, square, triangle, star        | waveform: sine, square, triangle, sawtooth           |
| colour    | red, green, blue, yellow, purple      | pitch: C4 262, E4 330, G4 392, B4 494, D5 587 Hz     |
| size      | small (radius 9), large (radius 17)   | rhythm: small = 4 short notes/s, large = 2 long      |
| texture   | plain, striped, dotted                | plain = steady, striped = 7 Hz vibrato, dotted = added noise |
| position  | left, right, top, bottom, centre      | a low hum: left 60 Hz, right 90, top 130, bottom 180, centre none |

Compositional scenes hold two objects side by side ("a red circle left of a blue square"); their sound
is the left object's sound then the right one's, half a second each (spatial order becomes time order).
Everything is a pure function of (seed, index), so a world is regenerated bit for bit anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from cl_core.demo.worlds import generate

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30),
           "purple": (140, 50, 180)}
SIZES = {"small": 9, "large": 17}
TEXTURES = ("plain", "striped", "dotted")
POSITIONS = {"left": (16, 32), "right": (48, 32), "top": (32, 16), "bottom": (32, 48), "centre": (32, 32)}
PITCH = {"red": 261.63, "green": 329.63, "blue": 392.0, "yellow": 493.88, "purple": 587.33}
WAVE = {"circle": "sine", "square": "square", "triangle": "triangle", "star": "sawtooth"}
HUM = {"left": 60.0, "right": 90.0, "top": 130.0, "bottom": 180.0, "centre": 0.0}
RATE = 8000
IMAGE_SIZE = 64

COLOUR_WORDS = {"red": ["red", "scarlet", "crimson"], "green": ["green", "emerald"], "blue": ["blue", "azure"],
                "yellow": ["yellow", "golden"], "purple": ["purple", "violet"]}
SHAPE_WORDS = {"circle": ["circle", "disc", "round shape"], "square": ["square", "box"],
               "triangle": ["triangle", "three-sided shape"], "star": ["star", "five-pointed star"]}
SIZE_WORDS = {"small": ["small", "tiny", "little"], "large": ["large", "big", "huge"]}
TEXTURE_WORDS = {"plain": ["plain", "solid"], "striped": ["striped", "stripy"], "dotted": ["dotted", "spotted"]}
POSITION_WORDS = {"left": ["on the left", "at the left"], "right": ["on the right", "at the right"],
                  "top": ["at the top", "near the top"], "bottom": ["at the bottom", "near the bottom"],
                  "centre": ["in the middle", "in the centre"]}
TEMPLATES = (
    "a {size} {texture} {colour} {shape} {position}",
    "{position}, a {colour} {shape}, {size} and {texture}",
    "there is a {size} {colour} {shape} {position}; it is {texture}",
    "a picture of a {texture} {colour} {shape} that is {size}, {position}",
    "{size} {colour} {shape} with a {texture} pattern {position}",
)


@dataclass(frozen=True)
class Obj:
    shape: str
    colour: str
    size: str
    texture: str
    position: str

    def key(self) -> str:
        return f"{self.size} {self.texture} {self.colour} {self.shape} {self.position}"


@dataclass(frozen=True)
class Sample:
    index: int
    objects: tuple[Obj, ...]  # one object, or two side by side (compositional)
    image: Image.Image
    audio: np.ndarray
    caption: str

    @property
    def compositional(self) -> bool:
        return len(self.objects) > 1


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def random_object(rng: np.random.Generator, position: str | None = None) -> Obj:
    return Obj(str(rng.choice(SHAPES)), str(rng.choice(list(COLOURS))), str(rng.choice(list(SIZES))),
               str(rng.choice(TEXTURES)), position or str(rng.choice(list(POSITIONS))))


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "triangle":
        return [(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a))) for a in (-90, 30, 150)]
    points = []
    for k in range(10):  # star
        rad = r if k % 2 == 0 else r * 0.45
        ang = math.radians(-90 + 36 * k)
        points.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
    return points


def draw_object(img: Image.Image, obj: Obj, centre: tuple[float, float], rng: np.random.Generator) -> None:
    cx, cy = centre[0] + rng.uniform(-2, 2), centre[1] + rng.uniform(-2, 2)
    r = SIZES[obj.size] * rng.uniform(0.92, 1.08)
    mask = Image.new("L", img.size, 0)
    md = ImageDraw.Draw(mask)
    if obj.shape == "circle":
        md.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    else:
        md.polygon(_polygon(obj.shape, cx, cy, r), fill=255)
    colour = np.array(COLOURS[obj.colour], dtype=np.float32) + rng.normal(0, 8, 3)
    layer = Image.new("RGB", img.size, tuple(int(c) for c in np.clip(colour, 0, 255)))
    if obj.texture != "plain":
        ld = ImageDraw.Draw(layer)
        dark = tuple(int(c * 0.45) for c in np.clip(colour, 0, 255))
        if obj.texture == "striped":
            for x0 in range(-64, 64, 5):
                ld.line([(x0, 0), (x0 + 64, 64)], fill=dark, width=2)
        else:
            for yy in range(1, 64, 5):
                for xx in range(1 + (yy // 5 % 2) * 2, 64, 5):
                    ld.ellipse((xx - 1, yy - 1, xx + 1, yy + 1), fill=dark)
    img.paste(layer, (0, 0), mask)


def render(objects: tuple[Obj, ...], rng: np.random.Generator) -> Image.Image:
    base = np.clip(rng.normal(225, 6, (IMAGE_SIZE, IMAGE_SIZE, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(base, "RGB")
    if len(objects) == 1:
        draw_object(img, objects[0], POSITIONS[objects[0].position], rng)
    else:
        draw_object(img, objects[0], (18, 32), rng)
        draw_object(img, objects[1], (46, 32), rng)
    return img


def _wave(kind: str, phase: np.ndarray) -> np.ndarray:
    frac = (phase / (2 * np.pi)) % 1.0
    if kind == "sine":
        return np.sin(phase)
    if kind == "square":
        return np.sign(np.sin(phase)) * 0.7
    if kind == "triangle":
        return 2 * np.abs(2 * frac - 1) - 1
    return 2 * frac - 1  # sawtooth


def sound(obj: Obj, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    freq = PITCH[obj.colour] * rng.uniform(0.99, 1.01)
    if obj.texture == "striped":
        freq_t = freq * (1 + 0.03 * np.sin(2 * np.pi * 7 * t))
        phase = 2 * np.pi * np.cumsum(freq_t) / RATE
    else:
        phase = 2 * np.pi * freq * t
    tone = _wave(WAVE[obj.shape], phase)
    notes_per_s, duty = (4, 0.35) if obj.size == "small" else (2, 0.8)
    gate = ((t * notes_per_s) % 1.0 < duty).astype(np.float64)
    env = np.convolve(gate, np.ones(40) / 40, mode="same")  # soft edges, no clicks
    out = 0.6 * tone * env
    if obj.texture == "dotted":
        out = out + 0.08 * rng.normal(0, 1, n) * env
    if HUM[obj.position]:
        out = out + 0.25 * np.sin(2 * np.pi * HUM[obj.position] * t)
    return np.asarray(out, dtype=np.float32)


def caption(objects: tuple[Obj, ...], rng: np.random.Generator) -> str:
    def words(o: Obj) -> dict[str, str]:
        return {"colour": str(rng.choice(COLOUR_WORDS[o.colour])), "shape": str(rng.choice(SHAPE_WORDS[o.shape])),
                "size": str(rng.choice(SIZE_WORDS[o.size])), "texture": str(rng.choice(TEXTURE_WORDS[o.texture])),
                "position": str(rng.choice(POSITION_WORDS[o.position]))}

    if len(objects) == 1:
        text = str(rng.choice(TEMPLATES)).format(**words(objects[0]))
        return text[0].upper() + text[1:] if rng.random() < 0.3 else text
    a, b = words(objects[0]), words(objects[1])
    if rng.random() < 0.5:
        return f"a {a['colour']} {a['shape']} left of a {b['colour']} {b['shape']}"
    return f"a {b['colour']} {b['shape']} to the right of a {a['colour']} {a['shape']}"


def make_sample(seed: int, index: int, compositional_fraction: float = 0.15) -> Sample:
    rng = _rng(seed, index)
    if rng.random() < compositional_fraction:
        objects: tuple[Obj, ...] = (random_object(rng, "left"), random_object(rng, "right"))
        audio = np.concatenate([sound(objects[0], 0.5, rng), sound(objects[1], 0.5, rng)])
    else:
        objects = (random_object(rng),)
        audio = sound(objects[0], 1.0, rng)
    image = render(objects, rng)
    return Sample(index, objects, image, audio, caption(objects, rng))


def make_world(seed: int, count: int, compositional_fraction: float = 0.15, workers: int | None = None
               ) -> list[Sample]:
    return generate(make_sample, seed, count, workers, compositional_fraction=compositional_fraction)


@dataclass(frozen=True)
class Scene:
    """Held-out test scenes for localisation, with the truth: several distinct objects on one canvas (their
    centres and radii) and their sounds one after another (each object's segment, in seconds)."""

    objects: tuple[Obj, ...]
    image: Image.Image
    centres: tuple[tuple[float, float], ...]
    radii: tuple[float, ...]
    audio: np.ndarray
    segments: tuple[tuple[float, float], ...]


SCENE_SEED = 777_000  # never used for training or the galleries


def make_scene(index: int, objects: int = 2, canvas: int = 2 * IMAGE_SIZE, seed: int = SCENE_SEED) -> Scene:
    """`objects` objects of distinct colour-and-shape, placed apart on a `canvas`-pixel square, and their
    sounds (1 s each, no position hum) in the same order."""
    rng = _rng(seed, index)
    chosen: list[Obj] = []
    while len(chosen) < objects:
        o = random_object(rng, "centre")
        if all((o.colour, o.shape) != (c.colour, c.shape) for c in chosen):
            chosen.append(o)
    base = np.clip(rng.normal(225, 6, (canvas, canvas, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(base, "RGB")
    centres: list[tuple[float, float]] = []
    margin = SIZES["large"] + 4
    while len(centres) < objects:
        c = (float(rng.uniform(margin, canvas - margin)), float(rng.uniform(margin, canvas - margin)))
        if all(math.dist(c, d) > 2 * SIZES["large"] + 8 for d in centres):
            centres.append(c)
    radii = []
    for o, c in zip(chosen, centres, strict=True):
        draw_object(img, o, c, rng)
        radii.append(SIZES[o.size] * 1.08 + 2)  # the drawn radius at most, plus its jitter
    audio = np.concatenate([sound(o, 1.0, rng) for o in chosen])
    segments = tuple((float(i), float(i + 1)) for i in range(objects))
    return Scene(tuple(chosen), img, tuple(centres), tuple(radii), audio, segments)
