"""Whole slides read lazily: a (pyramidal) TIFF / OME-TIFF, H&E RGB or a multiplex stack, opened from its
header through tifffile's zarr store, and cut into patch x patch tiles one band of rows at a time (a band wider
than the memory budget is read in column pieces), so a slide larger than memory is never read whole.
Edge pixels that do not fill a whole tile are left out (said in `Slide.describe`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cl_core.errors import ReaderError
from cl_core.modality import ChannelStack, Item, Modality
from cl_core.readers.multichannel import _imagej_channel_names, _ome_channel_names, _sidecar_channel_names

BAND_BUDGET = 256 * 2**20  # bytes of raw pixels read at once


@dataclass
class Slide:
    """A slide's header: its levels, axes, dtype and channel names; pixels are read on demand."""

    path: Path
    axes: str  # of level 0 as tifffile gives them, e.g. "YXS" (RGB) or "CYX"
    levels: list[tuple[int, ...]]  # shapes, level 0 first
    dtype: np.dtype
    channel_names: tuple[str, ...] | None
    rgb: bool  # 8-bit RGB: an H&E picture, tiled as images
    notes: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | Path) -> Slide:
        import tifffile

        p = Path(path)
        try:
            with tifffile.TiffFile(p) as tif:
                series = tif.series[0]
                levels = [tuple(int(n) for n in lv.shape) for lv in series.levels]
                axes, dtype = series.axes.upper(), np.dtype(series.dtype)
                names = _ome_channel_names(tif.ome_metadata) or _imagej_channel_names(tif) or \
                    _sidecar_channel_names(p)
        except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError) as exc:
            raise ReaderError(str(p), f"not a readable TIFF slide: {type(exc).__name__}: {exc}") from None
        if "Y" not in axes or "X" not in axes:
            raise ReaderError(str(p), f"no Y and X axes in the slide (axes {axes})")
        other = [a for a in axes if a not in "YXSC"]
        notes = [f"axis {a} of size {levels[0][axes.index(a)]}: its first plane is used" for a in other
                 if levels[0][axes.index(a)] > 1]
        rgb = dtype == np.uint8 and "S" in axes and levels[0][axes.index("S")] in (3, 4) and "C" not in axes
        return cls(p, axes, levels, dtype, names, rgb, notes)

    @property
    def height(self) -> int:
        return self.levels[0][self.axes.index("Y")]

    @property
    def width(self) -> int:
        return self.levels[0][self.axes.index("X")]

    @property
    def channels(self) -> int:
        for a in "CS":
            if a in self.axes:
                return self.levels[0][self.axes.index(a)]
        return 1

    def grid(self, patch: int) -> tuple[int, int]:
        """(rows, cols) of whole patch x patch tiles."""
        return self.height // patch, self.width // patch

    def describe(self, patch: int) -> str:
        rows, cols = self.grid(patch)
        left = (self.height - rows * patch, self.width - cols * patch)
        return (f"{self.width} x {self.height} px, {self.channels} channel(s) {self.dtype}, {len(self.levels)} "
                f"level(s); {rows} x {cols} tiles of {patch} px" +
                (f" ({left[1]} px at the right and {left[0]} at the bottom left out)" if any(left) else ""))

    def _array(self, level: int = 0) -> Any:
        import tifffile
        import zarr

        store = tifffile.imread(self.path, aszarr=True, level=level)
        return zarr.open(store, mode="r")

    def _check_chunks(self, arr: Any) -> None:
        """Refuse a level stored in pieces too large to read one at a time (a whole-slide image written as one
        strip): reading any tile would decode the whole piece."""
        chunk = int(np.prod(arr.chunks, dtype=np.float64)) * self.dtype.itemsize
        if chunk > 4 * BAND_BUDGET:
            raise ReaderError(str(self.path), f"stored in pieces of {chunk / 2**20:.0f} MiB (chunks "
                                              f"{' x '.join(map(str, arr.chunks))}); reading one tile would decode a "
                                              "whole piece — save the slide tiled (e.g. 256 x 256 tiles, as "
                                              "pyramidal OME-TIFF writers do)")

    def _read(self, arr: Any, level: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """[C, y, x] pixels of a region of a level (other axes at their first plane)."""
        index: list[int | slice] = []
        keep: list[str] = []
        for a in self.axes:
            if a == "Y":
                index.append(slice(y0, y1))
            elif a == "X":
                index.append(slice(x0, x1))
            elif a in "CS":
                index.append(slice(None))
            else:
                index.append(0)
                continue
            keep.append(a)
        block = np.asarray(arr[tuple(index)])
        if not any(a in keep for a in "CS"):
            block, keep = block[None], ["C", *keep]
        chan = "C" if "C" in keep else "S"
        return np.moveaxis(block, [keep.index(chan), keep.index("Y"), keep.index("X")], [0, 1, 2])

    def bands(self, patch: int, rows_wanted: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(row, [cols, C, patch, patch]) for each band of tiles wanted (all by default), read piece by piece."""
        rows, cols = self.grid(patch)
        arr = self._array(0)
        self._check_chunks(arr)
        row_bytes = patch * patch * self.channels * self.dtype.itemsize
        per_piece = max(1, BAND_BUDGET // max(row_bytes, 1))
        for r in range(rows) if rows_wanted is None else rows_wanted:
            out = np.empty((cols, self.channels, patch, patch), self.dtype)
            for c0 in range(0, cols, per_piece):
                c1 = min(cols, c0 + per_piece)
                block = self._read(arr, 0, r * patch, (r + 1) * patch, c0 * patch, c1 * patch)
                out[c0:c1] = block.reshape(self.channels, patch, c1 - c0, patch).transpose(2, 0, 1, 3)
            yield r, out

    def items(self, tiles: np.ndarray, row: int, patch: int) -> list[Item]:
        """One band's tiles as items: RGB pictures for an H&E slide, channel stacks otherwise."""
        out = []
        for c, t in enumerate(tiles):
            source = f"{self.path}@{c * patch},{row * patch}"
            if self.rgb:
                out.append(Item(source, Modality.IMAGE, Image.fromarray(np.ascontiguousarray(t[:3].transpose(1, 2, 0)),
                                                                         "RGB")))
            else:
                names = self.channel_names if self.channel_names and len(self.channel_names) == len(t) else None
                out.append(Item(source, Modality.MULTICHANNEL, ChannelStack(t.astype(np.float32), names)))
        return out

    def overview(self, max_side: int = 2048) -> tuple[np.ndarray, int]:
        """The largest pyramid level no wider or taller than `max_side` (the smallest level when none is), as
        [C, H, W], subsampled to fit — a level too large to read at once is read a band at a time — and its
        downsampling factor against level 0."""
        y, x = self.axes.index("Y"), self.axes.index("X")
        fits = [i for i, s in enumerate(self.levels) if max(s[y], s[x]) <= max_side]
        level = fits[0] if fits else len(self.levels) - 1
        shape = self.levels[level]
        nbytes = int(np.prod(shape, dtype=np.float64)) * self.dtype.itemsize
        if nbytes > 4 * BAND_BUDGET:  # no pyramid: every step-th pixel of the smallest level, a band at a time
            step = int(np.ceil(max(shape[y], shape[x]) / max_side))
            source = self._array(level)
            self._check_chunks(source)
            rows_per = max(step, (BAND_BUDGET // max(1, shape[x] * self.channels * self.dtype.itemsize)) // step * step)
            parts = [self._read(source, level, y0, min(shape[y], y0 + rows_per), 0, shape[x])[:, ::step, ::step]
                     for y0 in range(0, shape[y], rows_per)]
            return np.concatenate(parts, axis=1), max(1, round(self.width / shape[x])) * step
        arr = self._read(self._array(level), level, 0, shape[y], 0, shape[x])
        factor = max(1, round(self.width / shape[x]))
        step = max(1, int(np.ceil(max(shape[y], shape[x]) / max_side)))
        if step > 1:
            arr = arr[:, ::step, ::step]
            factor *= step
        return arr, factor
