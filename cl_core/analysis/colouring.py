"""How a map colours its points: by modality, label or any metadata column of the gallery. A column of
numbers with many distinct values is continuous (a colour bar); anything else is categorical (a legend).
Qt-free so `clens` and tests can ask the same question the panel does."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cl_core.embed.gallery import Row

BUILT_IN = ("modality", "label")
CONTINUOUS_MIN_DISTINCT = 13  # fewer distinct numbers than this read better as categories (a legend)
MISSING_CATEGORY = "(none)"  # the category of rows with no value in the column


@dataclass
class Colouring:
    """`categorical`: codes index `categories`. `continuous`: `values` (NaN where missing) between `low` and
    `high`."""

    column: str
    kind: str  # categorical | continuous
    categories: list[str] = field(default_factory=list)
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    low: float = 0.0
    high: float = 1.0


def colour_columns(meta: Mapping[str, Sequence[Any]]) -> list[str]:
    """What a map can be coloured by: modality, label, then the gallery's metadata columns."""
    return [*BUILT_IN, *(c for c in meta if c not in BUILT_IN)]


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return float(v) if math.isfinite(float(v)) else None
    try:
        x = float(str(v).strip())
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def colouring(rows: Sequence[Row], meta: Mapping[str, Sequence[Any]], column: str) -> Colouring:
    """The colours of every row (an index's rows and metadata columns) by `column`; an unknown column is an
    error naming the ones there are."""
    if column == "modality":
        raw: list[Any] = [r.modality.value for r in rows]
    elif column == "label":
        raw = [r.label for r in rows]
    elif column in meta:
        raw = list(meta[column])
    else:
        raise KeyError(f"no column {column!r} to colour by (have: {', '.join(colour_columns(meta))})")
    present = [v for v in raw if v not in (None, "")]
    numbers = [_number(v) for v in present]
    if present and all(x is not None for x in numbers) and len(set(numbers)) >= CONTINUOUS_MIN_DISTINCT:
        values = np.array([np.nan if v in (None, "") else _number(v) for v in raw], np.float64)
        finite = values[np.isfinite(values)]
        return Colouring(column, "continuous", values=values, low=float(finite.min()), high=float(finite.max()))
    names = [MISSING_CATEGORY if v in (None, "") else str(v) for v in raw]
    if present and all(x is not None for x in numbers):  # few distinct numbers: ordered as numbers
        categories = sorted(set(names), key=lambda n: (n == MISSING_CATEGORY, _number(n) or 0.0))
    else:
        categories = sorted(set(names), key=lambda n: (n == MISSING_CATEGORY, n))
    lookup = {c: i for i, c in enumerate(categories)}
    return Colouring(column, "categorical", categories, np.array([lookup[n] for n in names], np.int64))
