"""Positive-cell fractions of mIF patches, the second target biomarker inference offers (beside mean channel
intensity): cells are found as peaks of the nuclear stain, each cell's marker value is the marker's mean in a
5 x 5 window on it, and a cell is positive for a marker above Otsu's split of all reference cells' values for
that marker. The nuclear channel's own target is the patch's cell count. A simple, stated measure — not a
segmentation tool's: touching nuclei closer than two pixels count as one cell."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WINDOW = 5  # px: the window a cell's marker value is averaged over
PEAK = 3  # px: nuclei closer than this merge into one peak


def otsu(values: np.ndarray, bins: int = 256) -> float:
    """The threshold that best splits `values` in two (Otsu's between-class variance): the upper edge of the
    last bin of the low group."""
    hist, edges = np.histogram(np.asarray(values, np.float64), bins)
    mids = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * mids) / np.maximum(w0, 1)
    m1 = ((hist * mids).sum() - np.cumsum(hist * mids)) / np.maximum(w1, 1)
    return float(edges[int(np.argmax(w0 * w1 * (m0 - m1) ** 2)) + 1])


def nuclear_channel(names: Sequence[str]) -> int | None:
    """Which channel is the nuclear stain (DAPI, Hoechst, ... by name and alias), or None."""
    from cl_core.readers.channels import canonical

    want = canonical("DAPI")
    return next((i for i, n in enumerate(names) if canonical(n) == want), None)


def smoothed_nuclei(pixels: np.ndarray, nuclear: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.asarray(gaussian_filter(pixels[nuclear].astype(np.float32), 1.0))


def nuclear_threshold(stacks: Sequence[np.ndarray], nuclear: int) -> float:
    """Otsu's split of the smoothed nuclear stain over the stacks (nucleus vs background)."""
    return otsu(np.concatenate([smoothed_nuclei(s, nuclear).ravel() for s in stacks]))


def cell_values(pixels: np.ndarray, nuclear: int, threshold: float) -> np.ndarray:
    """[cells, C]: each cell's mean of every channel in a WINDOW x WINDOW window on its nuclear peak."""
    from scipy.ndimage import maximum_filter, uniform_filter

    dapi = smoothed_nuclei(pixels, nuclear)
    peaks = (dapi == maximum_filter(dapi, size=PEAK)) & (dapi > threshold)
    ys, xs = np.nonzero(peaks)
    if not len(ys):
        return np.zeros((0, len(pixels)), np.float32)
    return np.stack([uniform_filter(p.astype(np.float32), WINDOW)[ys, xs] for p in pixels], axis=1)


def positive_fractions(cells: Sequence[np.ndarray], nuclear: int,
                       thresholds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """[N, C] per patch: the fraction of its cells positive for each marker (the nuclear column: its cell
    count), and the [C] thresholds (given — a reference's, for query patches — or Otsu over every cell of every
    patch; nan for the nuclear channel)."""
    channels = cells[0].shape[1] if cells else 0
    if thresholds is None:
        pooled = np.concatenate([c for c in cells if len(c)]) if any(len(c) for c in cells) else \
            np.zeros((0, channels), np.float32)
        thresholds = np.array([otsu(pooled[:, m]) if len(pooled) and m != nuclear else np.nan
                               for m in range(channels)])
    out = np.zeros((len(cells), channels))
    for i, c in enumerate(cells):
        if len(c):
            with np.errstate(invalid="ignore"):
                out[i] = (c > thresholds).mean(axis=0)
        out[i, nuclear] = len(c)
    return out, thresholds
