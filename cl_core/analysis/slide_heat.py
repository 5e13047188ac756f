"""A whole slide's tiles as vectors and their scores against a query: what a slide heatmap holds (the Session
keeps one), and how glass is told from tissue. Embedding the tiles is cl_core.actions.slides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cl_core.analysis.cells import otsu
from cl_core.modality import Modality
from cl_core.readers.slide import Slide


@dataclass
class SlideEmbedding:
    """One vector per tile (NaN rows: tiles that could not be embedded), in row-major tile order."""

    path: str
    patch: int
    rows: int
    cols: int
    modality: Modality
    vectors: np.ndarray  # [rows * cols, D] float32
    from_cache: int = 0  # bands found in the cache
    failed: list[str] = field(default_factory=list)  # "x,y: reason"
    cancelled: bool = False
    done_rows: int = 0  # bands embedded (all of them unless cancelled)
    model_fingerprint: str = ""
    description: str = ""
    channel_notes: list[str] = field(default_factory=list)  # channels read through an alias, or ignored


@dataclass
class SlideHeat:
    """Each tile's cosine to the query, [rows, cols] (NaN where a tile has no vector), and the query."""

    embedding: SlideEmbedding
    scores: np.ndarray
    query: list[str]
    background: np.ndarray | None = None  # [rows, cols] tiles of glass (not drawn, not ranked)
    overview: np.ndarray | None = None  # [H, W, 3] uint8 picture of the slide, for a front end to draw
    overview_scale: float = 1.0  # slide pixels per overview pixel

    def requery(self, row: int, col: int) -> SlideHeat:
        """The same slide scored against one of its own tiles (no model needed: the tile's vector is here)."""
        e = self.embedding
        q = e.vectors[row * e.cols + col]
        if not np.all(np.isfinite(q)):
            raise ValueError(f"the tile at row {row}, column {col} has no embedding")
        return SlideHeat(e, heat_of(e, q), [f"tile at x={col * e.patch}, y={row * e.patch}"], self.background,
                         self.overview, self.overview_scale)

    @property
    def shown(self) -> np.ndarray:
        """The scores with background tiles as NaN."""
        return self.scores if self.background is None else np.where(self.background, np.nan, self.scores)

    def top(self, k: int = 10) -> list[dict[str, Any]]:
        flat = np.nan_to_num(self.shown.ravel(), nan=-np.inf)
        best = np.argsort(-flat, kind="stable")[:k]
        p, cols = self.embedding.patch, self.embedding.cols
        return [{"x": int(i % cols) * p, "y": int(i // cols) * p, "row": int(i // cols), "col": int(i % cols),
                 "score": round(float(flat[i]), 5)} for i in best if np.isfinite(flat[i])]

    def to_dict(self) -> dict[str, Any]:
        e, s = self.embedding, self.scores[np.isfinite(self.scores)]
        return {"slide": e.path, "patch": e.patch, "rows": e.rows, "cols": e.cols, "modality": e.modality.value,
                "query": self.query, "tiles_from_cache_bands": e.from_cache, "failed": e.failed,
                "cancelled": e.cancelled, "description": e.description, "channel_notes": e.channel_notes,
                "background_tiles": int(self.background.sum()) if self.background is not None else 0,
                "min": round(float(s.min()), 5) if len(s) else None, "max": round(float(s.max()), 5) if len(s) else None,
                "top": self.top()}


def heat_of(embedding: SlideEmbedding, query: np.ndarray) -> np.ndarray:
    """[rows, cols] cosine of each tile to the unit query vector."""
    with np.errstate(invalid="ignore"):
        return (embedding.vectors @ np.asarray(query, np.float32)).reshape(embedding.rows, embedding.cols)


def background_tiles(slide: Slide, patch: int) -> np.ndarray:
    """[rows, cols] True where a tile is glass, found on the overview: H&E glass has no colour (low
    saturation of the tile's mean colour), mIF glass no signal (low mean). Otsu's split of that per-tile figure, kept only when the two
    groups are clearly apart (else no tile is called glass: a slide filled with tissue)."""
    rows, cols = slide.grid(patch)
    pixels, factor = slide.overview(4096)
    step = max(1, patch // factor)
    h, w = min(rows, pixels.shape[1] // step), min(cols, pixels.shape[2] // step)
    means = np.zeros((len(pixels), rows, cols), np.float32)  # each tile's mean per channel
    means[:, :h, :w] = pixels[:, :h * step, :w * step].astype(np.float32).reshape(
        len(pixels), h, step, w, step).mean(axis=(2, 4))
    rgb = slide.rgb and len(means) >= 3
    per = means[:3].max(axis=0) - means[:3].min(axis=0) if rgb else means.mean(axis=0)
    t = otsu(per.ravel())
    low, high = per[per <= t], per[per > t]
    if not len(low) or not len(high):
        return np.zeros((rows, cols), bool)
    spread = np.sqrt((low.var() * len(low) + high.var() * len(high)) / per.size)
    if high.mean() - low.mean() < 3 * max(float(spread), 1e-6):
        return np.zeros((rows, cols), bool)
    return per <= t
