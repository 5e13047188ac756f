"""Synthetic whole slides: a tissue section assembled from regions in known states (tumour, necrosis,
immune-rich, stroma), written as pyramidal OME-TIFF for H&E (RGB) and for 6-channel mIF (uint16), with its
ground-truth region mask — so a slide heatmap can be scored, not just looked at.

Each 64-px patch of the section is drawn by the tissue world's own renderer (cl_core.demo.worlds.tissue: the
same cells, Beer-Lambert H&E and mIF channels) from a case in its region's state. To write a 20k x 20k slide in
bounded memory and time, a bank of patches is rendered per state and each patch place takes one of them under
one of the eight flips/rotations; every pyramid level is assembled from the bank downsampled the same way, tile
by tile, so nothing larger than one tile is ever held. Regions are Voronoi cells of random seeds (each state
gets some) inside an elliptical section outline; outside it is glass (background, mask 0).

Outputs for `name` in a folder: name-he.ome.tif, name-mif.ome.tif, name-mask.npy (uint8 [rows, cols], one value
per patch: 0 background, 1.. the states in STATES order) and name-slide.json (patch size, states, seed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cl_core.atomic import atomic_path, atomic_write, save_npy_atomic
from cl_core.demo.worlds import tissue as ts

STATES = ("tumour", "necrosis", "immune", "stroma")
CHANNELS = ts.CHANNELS
PATCH = ts.SIZE  # 64 px: the demo model's patch
TILE = 256  # the TIFF's tile size
# what each state's text says, in the words the demo model's clinical texts use (chosen on a slide of seed 1;
# benchmarks/bench_slide.py scores them on slides of other seeds)
STATE_TEXTS = {"tumour": "poorly differentiated, Ki67 high, tumour cellularity about 80%, necrosis absent",
               "necrosis": "tumour necrosis present",
               "immune": "dense CD8 T-cell infiltrate, PD-L1 high",
               "stroma": "tumour cellularity about 0%"}


def state_case(state: str, rng: np.random.Generator) -> ts.Case:
    """A case whose patches look like the state: its cellularity, infiltration and necrosis set."""
    u = rng.uniform
    if state == "tumour":
        return ts.Case("lung", "IV", 60, u(0.8, 0.9), u(0.03, 0.1), u(0.2, 0.5), u(0.6, 0.8), False, 3, False)
    if state == "necrosis":
        return ts.Case("lung", "IV", 60, u(0.7, 0.85), u(0.03, 0.1), u(0.2, 0.4), u(0.6, 0.8), False, 3, True)
    if state == "immune":
        return ts.Case("lung", "I", 60, u(0.03, 0.08), u(0.9, 0.95), u(0.5, 0.8), u(0.1, 0.2), True, 1, False)
    if state == "stroma":
        return ts.Case("lung", "I", 60, u(0.0, 0.03), u(0.02, 0.06), u(0.0, 0.1), u(0.02, 0.05), False, 1, False)
    raise ValueError(f"no tissue state {state!r} (one of {', '.join(STATES)})")


def draw_patch(state: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One patch of the state: H&E [64, 64, 3] uint8 and mIF [6, 64, 64] uint16. A necrotic patch is mostly
    dead tissue (debris, fragments, glow), not a small dead zone in a nest."""
    case = state_case(state, rng)
    tissue = ts._architecture(case.organ, rng)
    centres = rng.uniform(12, 52, (2, 2))
    if state == "necrosis":
        yy, xx = np.mgrid[:PATCH, :PATCH]
        cx, cy = rng.uniform(24, 40, 2)
        dead = np.hypot(xx - cx, yy - cy) < rng.uniform(22, 30)
    else:
        dead = np.zeros((PATCH, PATCH), bool)
    cells = ts._cells(case, tissue, rng, centres, dead)
    fragments = ts._fragments(dead, rng)
    he = np.asarray(ts.render_he(cells, tissue, rng, dead, fragments), np.uint8)
    mif = ts.render_mif(cells, tissue, rng, dead, fragments).astype(np.uint16)
    return he, mif


def glass(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background: bright slide glass in H&E, camera offset and noise in mIF."""
    he = np.clip(242 + rng.normal(0, 3, (PATCH, PATCH, 3)), 0, 255).astype(np.uint8)
    mif = np.clip(60 + rng.normal(0, 20, (len(ts.CHANNELS), PATCH, PATCH)), 0, 4095).astype(np.uint16)
    return he, mif


def region_mask(rows: int, cols: int, rng: np.random.Generator, regions: int | None = None) -> np.ndarray:
    """uint8 [rows, cols]: 0 outside the elliptical section, else 1 + the state of the nearest region seed."""
    regions = regions or max(len(STATES) * 2, rows * cols // 600)
    seeds = np.column_stack([rng.uniform(0, rows, regions), rng.uniform(0, cols, regions)])
    states = np.resize(rng.permutation(len(STATES)), regions)
    rng.shuffle(states)
    states[: len(STATES)] = np.arange(len(STATES))  # every state has at least one region
    yy, xx = np.mgrid[:rows, :cols]
    out = np.zeros((rows, cols), np.uint8)
    for r0 in range(0, rows, 64):  # nearest seed, a band of rows at a time (bounded memory)
        y, x = yy[r0:r0 + 64, :, None], xx[r0:r0 + 64, :, None]
        d = (y - seeds[:, 0]) ** 2 + (x - seeds[:, 1]) ** 2
        out[r0:r0 + 64] = 1 + states[np.argmin(d, axis=2)]
    inside = ((yy - rows / 2) / (rows * 0.48)) ** 2 + ((xx - cols / 2) / (cols * 0.48)) ** 2 <= 1.0
    out[~inside] = 0
    return out


@dataclass
class Bank:
    """Rendered patches per state (index 0: glass), and their downsampled copies per pyramid factor."""

    he: list[np.ndarray]  # per state [n, 64, 64, 3] uint8
    mif: list[np.ndarray]  # per state [n, 6, 64, 64] uint16

    @classmethod
    def render(cls, seed: int, per_state: int) -> Bank:
        he, mif = [], []
        for s, state in enumerate(("glass", *STATES)):
            pairs = [glass(np.random.default_rng([seed, s, i])) if state == "glass" else
                     draw_patch(state, np.random.default_rng([seed, s, i])) for i in range(per_state)]
            he.append(np.stack([p[0] for p in pairs]))
            mif.append(np.stack([p[1] for p in pairs]))
        return cls(he, mif)

    def shrunk(self, factor: int) -> Bank:
        """Each patch block-averaged by `factor` (a power of two up to 64)."""
        def down(a: np.ndarray, axes: tuple[int, int]) -> np.ndarray:
            if factor == 1:
                return a
            shape = list(a.shape)
            y, x = axes
            shape[y:x + 1] = [a.shape[y] // factor, factor, a.shape[x] // factor, factor]
            return a.reshape(shape).mean(axis=(y + 1, x + 2)).round().astype(a.dtype)

        return Bank([down(h, (1, 2)) for h in self.he], [down(m, (2, 3)) for m in self.mif])


def _dihedral(a: np.ndarray, k: int, yx: tuple[int, int]) -> np.ndarray:
    """One of the eight flips/rotations of a patch (axes yx)."""
    a = np.rot90(a, k % 4, axes=yx)
    return np.flip(a, axis=yx[1]) if k >= 4 else a


@dataclass
class Layout:
    """Which bank patch (and transform) sits at each patch place."""

    mask: np.ndarray  # [rows, cols] uint8
    pick: np.ndarray  # [rows, cols] index into the state's bank
    turn: np.ndarray  # [rows, cols] 0..7

    def tiles(self, bank: Bank, patch: int, kind: str, channel: int | None = None) -> Iterator[np.ndarray]:
        """The level's TILE x TILE tiles in row-major order (edge tiles padded), each assembled from the bank."""
        rows, cols = self.mask.shape
        per = TILE // patch  # patch places per tile side
        height, width = rows * patch, cols * patch
        for ty in range(0, height, TILE):
            for tx in range(0, width, TILE):
                shape = (TILE, TILE, 3) if kind == "he" else (TILE, TILE)
                tile = np.zeros(shape, np.uint8 if kind == "he" else np.uint16)
                r0, c0 = ty // patch, tx // patch
                for r in range(r0, min(r0 + per, rows)):
                    for c in range(c0, min(c0 + per, cols)):
                        s, i, k = int(self.mask[r, c]), int(self.pick[r, c]), int(self.turn[r, c])
                        if kind == "he":
                            p = _dihedral(bank.he[s][i], k, (0, 1))
                        else:
                            p = _dihedral(bank.mif[s][i][channel], k, (0, 1))
                        y, x = (r - r0) * patch, (c - c0) * patch
                        tile[y:y + patch, x:x + patch] = p
                yield tile


@dataclass
class SlideFiles:
    he: Path
    mif: Path
    mask: Path
    meta: Path


def make_slide(folder: str | Path, name: str = "slide", size: int = 4096, seed: int = 0,
               per_state: int = 48, kinds: tuple[str, ...] = ("he", "mif")) -> SlideFiles:
    """Write a slide of about size x size pixels (rounded down to whole 64-px patches): its H&E and mIF pyramidal
    OME-TIFFs (each level half the last, down to about 512 px), the region mask and a description."""
    import tifffile

    if size < PATCH:
        raise ValueError(f"a slide is at least {PATCH} px wide")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 101])
    rows = cols = size // PATCH
    mask = region_mask(rows, cols, rng)
    layout = Layout(mask, rng.integers(0, per_state, mask.shape), rng.integers(0, 8, mask.shape))
    bank = Bank.render(seed, per_state)
    factors = [1]
    while rows * PATCH // (factors[-1] * 2) >= 512 and factors[-1] * 2 <= PATCH:
        factors.append(factors[-1] * 2)
    out = SlideFiles(folder / f"{name}-he.ome.tif", folder / f"{name}-mif.ome.tif", folder / f"{name}-mask.npy",
                     folder / f"{name}-slide.json")
    for kind in kinds:
        path = out.he if kind == "he" else out.mif
        with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tif:
            for n, f in enumerate(factors):
                small, patch = bank.shrunk(f), PATCH // f
                shape = (rows * patch, cols * patch, 3) if kind == "he" else (len(ts.CHANNELS), rows * patch,
                                                                              cols * patch)
                if kind == "he":
                    data: Iterator[np.ndarray] = layout.tiles(small, patch, "he")
                else:
                    data = (t for c in range(len(ts.CHANNELS)) for t in layout.tiles(small, patch, "mif", c))
                extra = ({"subifds": len(factors) - 1, "metadata": (
                    {"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5} if kind == "he" else
                    {"axes": "CYX", "Channel": {"Name": list(ts.CHANNELS)}, "PhysicalSizeX": 0.5,
                     "PhysicalSizeY": 0.5})} if n == 0 else {"subfiletype": 1, "metadata": None})
                tif.write(data, shape=shape, dtype=np.uint8 if kind == "he" else np.uint16, tile=(TILE, TILE),
                          photometric="rgb" if kind == "he" else "minisblack", **extra)
    save_npy_atomic(out.mask, mask)
    with atomic_write(out.meta, "w") as fh:
        json.dump({"patch": PATCH, "rows": rows, "cols": cols, "states": ["background", *STATES], "seed": seed,
                   "texts": STATE_TEXTS, "levels": factors}, fh, indent=1)
    return out
