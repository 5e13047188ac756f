"""Two models on one gallery: the same item under both is matched by what it is (modality, file, text), never
by row number (each model's index keeps its own rows), and their result lists are compared by overlap@k."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cl_core.embed.gallery import GalleryEmbedding, Row
from cl_core.models.base import BaseModel
from cl_core.search.query import Hit, SearchResult
from cl_core.search.store import IndexSet, index_rows_of

ItemKey = tuple[str, str, str]


def row_key(row: Row) -> ItemKey:
    """What an item is, whichever model embedded it: its modality, file and text."""
    return row.modality.value, row.source, row.text or ""


def hit_key(hit: Hit) -> ItemKey:
    return hit.modality, hit.source, hit.text or ""


def overlap_at_k(a: Sequence[Hit], b: Sequence[Hit], k: int) -> dict[str, Any]:
    """How many of the first k items the two lists share: `overlap` = shared / k (the usual overlap@k; lists
    shorter than k count what they have), `jaccard` = shared / items in either."""
    ka, kb = {hit_key(h) for h in a[:k]}, {hit_key(h) for h in b[:k]}
    shared = len(ka & kb)
    either = len(ka | kb)
    depth = max(len(ka), len(kb))
    return {"k": k, "shared": shared, "overlap": shared / depth if depth else None,
            "jaccard": shared / either if either else None}


@dataclass
class Comparison:
    """The second model, its embedding of the open gallery, its index, what was measured on both (`figures`:
    name -> (first model's value, second's, definition)), and its results for the shown query."""

    model: BaseModel
    fingerprint: str
    embedding: GalleryEmbedding
    index: IndexSet
    source: str  # the gallery both embedded
    figures: list[tuple[str, float | None, float | None, str]] = field(default_factory=list)
    results: SearchResult | None = None
    overlap: dict[str, Any] = field(default_factory=dict)
    to_first: np.ndarray | None = None  # the first model's index row of each of this index's rows (-1: none);
    # None when both embedded the same items in the same order (then the rows are the same)
    coords: np.ndarray | None = None  # [n, 2] this model's map of its index (PCA), to see both spaces

    def second_rows(self, first_rows: Sequence[int]) -> list[int]:
        """This index's rows of the first model's index rows (the items the second model has)."""
        if self.to_first is None:
            return [r for r in first_rows if 0 <= r < len(self.embedding.rows)]
        wanted = set(first_rows)
        return [int(i) for i in np.nonzero(np.isin(self.to_first, list(wanted)))[0]] if wanted else []

    def first_row(self, row: int) -> int | None:
        """The first model's index row of this index's `row` (the same item), or None."""
        if self.to_first is None:
            return row
        found = int(self.to_first[row])
        return found if found >= 0 else None


def row_map(first: Sequence[Row], second: Sequence[Row]) -> np.ndarray | None:
    """For an index built from `second`'s rows, each row's row in an index built from `first`'s (-1: the first
    model has no such item); None when both are the same items in the same order."""
    keys_a, keys_b = [row_key(r) for r in first], [row_key(r) for r in second]
    if keys_a == keys_b:
        return None
    where_a = index_rows_of(first)
    by_key = {k: int(where_a[i]) for i, k in enumerate(keys_a)}
    out = np.full(len(second), -1, np.int64)
    out[index_rows_of(second)] = [by_key.get(k, -1) for k in keys_b]
    return out
