"""Retrieval metrics on paired data: row i of the queries belongs with row i of the gallery."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each query's true partner (column i of row i) by score; only strictly higher scores
    count against it."""
    true = np.diag(scores)[:, None]
    return (scores > true).sum(axis=1) + 1


BLOCK_SCORES = 32 * 1024 * 1024  # scores held at once: 128 MB of float32, whatever the gallery size


def ranks(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """1-based rank of each query's true partner among all gallery rows by cosine (fp32), a block of queries
    at a time: memory is linear in n (at 100k pairs the whole score matrix would be 40 GB)."""
    q = queries.astype(np.float32, copy=False)
    g = gallery.astype(np.float32, copy=False)
    block = max(1, BLOCK_SCORES // max(len(g), 1))
    out = np.empty(len(q), np.int64)
    for start in range(0, len(q), block):
        scores = q[start:start + block] @ g.T
        rows = np.arange(len(scores))
        true = scores[rows, start + rows][:, None]  # the partner's score from the same product (ties stay ties)
        out[start:start + len(scores)] = (scores > true).sum(axis=1) + 1
    return out


def retrieval_report(queries: np.ndarray, gallery: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    return report_from_ranks(ranks(queries, gallery), ks)


def report_from_ranks(r: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@K, median rank and n from 1-based ranks."""
    out = {f"R@{k}": float((r <= k).mean()) for k in ks}
    out["median_rank"] = float(np.median(r))
    out["n"] = int(len(r))
    return out
