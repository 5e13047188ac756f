"""Multichannel readers (mIF, multispectral, SAR): TIFF/OME-TIFF via tifffile and .npy without pickle.

Shape and dtype are read from headers first; a stack over the memory budget is read from a smaller
pyramid level when the file has one, and refused otherwise, so a 40-channel whole slide never lands in RAM.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from cl_core.errors import ReaderError
from cl_core.formats import sidecars
from cl_core.modality import ChannelStack, Item, Modality


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"


def _ome_channel_names(xml: str | None) -> tuple[str, ...] | None:
    if not xml:
        return None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    names = [el.get("Name") or el.get("ID") or "" for el in root.iter() if el.tag.endswith("}Channel")]
    if not names or not all(names):
        return None
    return tuple(names)


def _imagej_channel_names(tif: tifffile.TiffFile) -> tuple[str, ...] | None:
    meta = tif.imagej_metadata or {}
    labels = meta.get("Labels")
    if isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels):
        return tuple(labels)
    return None


def _sidecar_channel_names(path: Path) -> tuple[str, ...] | None:
    """Names from `<file>.channels.json` (a list) or `<file>.channels.txt` (one per line)."""
    js, txt = (Path(p) for p in sidecars(str(path)))
    if js.is_file():
        try:
            names = json.loads(js.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return tuple(str(n) for n in names) if isinstance(names, list) else None
    if txt.is_file():
        lines = [ln.strip() for ln in txt.read_text(encoding="utf-8").splitlines() if ln.strip()]
        return tuple(lines) or None
    return None


def _to_chw(array: np.ndarray, axes: str) -> tuple[np.ndarray, list[str]]:
    """Reduce any tifffile axes string to C, Y, X; extra axes (T, Z, ...) take index 0 (noted)."""
    notes: list[str] = []
    axes = axes.upper().replace("S", "C") if "C" not in axes.upper() else axes.upper()
    index: list[int | slice] = []
    keep: list[str] = []
    for ax, size in zip(axes, array.shape, strict=True):
        if ax in "CYX":
            index.append(slice(None))
            keep.append(ax)
        else:
            index.append(0)
            if size > 1:
                notes.append(f"axis {ax} has {size} planes; the first is used")
    out = array[tuple(index)]
    if "C" not in keep:
        out = out[None]
        keep.insert(0, "C")
    order = [keep.index(a) for a in "CYX"]
    return np.ascontiguousarray(np.transpose(out, order)), notes


def read_tiff(path: Path, max_bytes: int, prefer_rgb_image: bool) -> list[Item]:
    """Read a TIFF. Plain 8-bit gray/RGB(A) TIFFs become images; everything else a channel stack."""
    src = str(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, dtype, axes = tuple(series.shape), np.dtype(series.dtype), series.axes
            names = _ome_channel_names(tif.ome_metadata) or _imagej_channel_names(tif) or _sidecar_channel_names(path)
            is_rgb_like = (dtype == np.uint8 and names is None and
                           (axes in ("YX", "YXS") and (len(shape) == 2 or shape[-1] in (3, 4))))
            if prefer_rgb_image and is_rgb_like:
                from cl_core.readers.image import read_image

                return read_image(path, max_pixels=max_bytes)
            level = series
            nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            note = ""
            if nbytes > max_bytes:
                fitting = [lv for lv in series.levels[1:]
                           if int(np.prod(lv.shape, dtype=np.float64)) * dtype.itemsize <= max_bytes]
                if not fitting:
                    raise ReaderError(src, f"too large: {' x '.join(map(str, shape))} {dtype} = {_human(nbytes)} "
                                           f"exceeds the {_human(max_bytes)} memory budget and the file has no "
                                           "pyramid level that fits")
                level = fitting[0]
                note = f"read pyramid level {series.levels.index(level)} ({' x '.join(map(str, level.shape))})"
            array = level.asarray()
    except ReaderError:
        raise
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError, MemoryError) as exc:
        raise ReaderError(src, f"corrupt or unsupported TIFF: {type(exc).__name__}: {exc}") from None
    chw, notes = _to_chw(array, axes)
    if note:
        notes.append(note)
    return [_stack_item(src, chw, names, notes)]


def read_npy(path: Path, max_bytes: int) -> list[Item]:
    """Read a .npy stack ([C, H, W], or [H, W, C] when the last axis is clearly the channel axis)."""
    src = str(path)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ReaderError(src, f"not a readable .npy array (pickled object arrays are refused): {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ReaderError(src, f"unsupported array dtype {arr.dtype}; expected numbers")
    if arr.ndim not in (2, 3):
        raise ReaderError(src, f"expected a [C, H, W] or [H, W] array, got shape {arr.shape}")
    if arr.nbytes > max_bytes:
        raise ReaderError(src, f"too large: {arr.shape} {arr.dtype} = {_human(arr.nbytes)} exceeds the "
                               f"{_human(max_bytes)} memory budget")
    data = np.asarray(arr)
    if data.ndim == 2:
        data = data[None]
    elif data.shape[-1] < min(data.shape[0], data.shape[1]) and data.shape[-1] <= 64:
        data = np.transpose(data, (2, 0, 1))
    return [_stack_item(src, np.ascontiguousarray(data), _sidecar_channel_names(path), [])]


def _stack_item(src: str, chw: np.ndarray, names: tuple[str, ...] | None, notes: list[str]) -> Item:
    if names is not None and len(names) != chw.shape[0]:
        notes.append(f"{len(names)} channel names for {chw.shape[0]} channels; names ignored")
        names = None
    pixels = chw.astype(np.float32, copy=False)
    if not np.all(np.isfinite(pixels)):
        raise ReaderError(src, "channel stack holds NaN or infinite values")
    meta = {"shape": tuple(chw.shape), "dtype": str(chw.dtype), "notes": notes}
    return Item(src, Modality.MULTICHANNEL, ChannelStack(pixels, names), meta)


def image_to_stack(item: Item) -> Item:
    """View an RGB image item as a 3-channel stack (for models whose tower takes channel stacks)."""
    img: Image.Image = item.data
    arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)
    return Item(item.source, Modality.MULTICHANNEL, ChannelStack(arr, ("R", "G", "B")), dict(item.meta))
