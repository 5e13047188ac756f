"""Retrieval metrics on paired data: row i of the queries belongs with row i of the gallery."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ranks(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """1-based rank of each query's true partner among all gallery rows (cosine, fp32; ties count against)."""
    q = queries.astype(np.float32, copy=False)
    g = gallery.astype(np.float32, copy=False)
    sims = q @ g.T
    true = np.diag(sims)[:, None]
    return (sims > true).sum(axis=1) + 1


def retrieval_report(queries: np.ndarray, gallery: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    r = ranks(queries, gallery)
    out = {f"R@{k}": float((r <= k).mean()) for k in ks}
    out["median_rank"] = float(np.median(r))
    out["n"] = int(len(r))
    return out
