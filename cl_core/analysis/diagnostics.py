"""Geometry of a model's embedding space, measured on a gallery.

- Modality gap (Liang et al., 2022): distance between modality centroids, and how well a linear probe
  (logistic regression, held-out accuracy) tells the modalities apart; 0.5 = indistinguishable.
- Alignment and uniformity (Wang & Isola, 2020) on paired samples: E||x-y||^2 and log E exp(-2||x-y||^2).
- Singular value spectrum and effective rank (Roy & Vetterli, 2007: exp of the entropy of the normalised
  singular values) per modality: dimensional collapse shows as a low effective rank.
- Hubness (Radovanovic et al., 2010): skewness of the k-occurrence N_k (how often each gallery item is in
  someone's top k), plus the share of items never retrieved, for each cross-modal direction.
- Modality bias: when a query may match every modality, how often its nearest neighbour (itself
  excluded) has its own modality, against that modality's share of the pool.
- Neighbour agreement: for paired samples, the overlap (Jaccard) of a sample's k nearest samples found
  within modality A and within modality B (intra), and of A's intra-modal neighbours with the neighbours
  its A-vector finds among B (inter).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cl_core import objectives
from cl_core.analysis.evaluation import paired_vectors
from cl_core.embed.gallery import GalleryEmbedding
from cl_core.modality import Modality

MAX_ROWS = 5000  # diagnostics subsample big galleries (deterministically) to stay interactive


def effective_rank(x: np.ndarray) -> float:
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    p = s / s.sum() if s.sum() > 0 else s
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def spectrum(x: np.ndarray) -> list[float]:
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    return (s / s[0]).round(5).tolist() if len(s) and s[0] > 0 else []


def alignment(x: np.ndarray, y: np.ndarray) -> float:
    """E||x_i - y_i||^2 over paired rows (cl_core.objectives.alignment, the training term)."""
    return float(objectives.alignment([torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y))]))


def uniformity(x: np.ndarray, t: float = 2.0) -> float:
    """log E exp(-t ||x_i - x_j||^2) over pairs (cl_core.objectives.uniformity, the training term)."""
    return float(objectives.uniformity([torch.from_numpy(np.asarray(x))], t))


BLOCK_SCORES = 32 * 1024 * 1024  # similarity scores held at once (128 MB of float32), whatever n is


def top_k(queries: np.ndarray, gallery: np.ndarray, k: int, skip_partner: bool = False) -> np.ndarray:
    """[nq, k] indices of each query's k most similar gallery rows (in no order), a block of queries at a
    time so memory is linear in n; `skip_partner` leaves out row i for query i (itself, or its pair)."""
    k = min(k, len(gallery) - (1 if skip_partner else 0))
    out = np.empty((len(queries), max(k, 0)), np.int64)
    if k <= 0:
        return out
    block = max(1, BLOCK_SCORES // max(len(gallery), 1))
    for start in range(0, len(queries), block):
        scores = queries[start:start + block] @ gallery.T
        if skip_partner:
            rows = np.arange(len(scores))
            scores[rows, start + rows] = -np.inf
        out[start:start + len(scores)] = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return out


def k_occurrence(queries: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(top_k(queries, gallery, k).ravel(), minlength=len(gallery))


def skewness(v: np.ndarray) -> float:
    v = v.astype(np.float64)
    sd = v.std()
    return float(((v - v.mean()) ** 3).mean() / sd**3) if sd > 0 else 0.0


def linear_probe_accuracy(x: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Held-out accuracy (5-fold) of a logistic regression telling the classes apart."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    counts = np.bincount(labels)
    folds = int(min(5, counts[counts > 0].min()))
    if folds < 2:
        return float("nan")
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(LogisticRegression(max_iter=2000), x, labels, cv=cv).mean())


def _knn_sets(x: np.ndarray, k: int) -> list[set[int]]:
    return [set(row.tolist()) for row in top_k(x, x, k, skip_partner=True)]


def _jaccard(a: list[set[int]], b: list[set[int]]) -> float:
    return float(np.mean([len(x & y) / len(x | y) if x | y else 1.0 for x, y in zip(a, b, strict=True)]))


def diagnose(emb: GalleryEmbedding, k: int = 10, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    vectors = np.asarray(emb.vectors, np.float32)
    mods = emb.modalities
    by_mod = {}
    for m in mods:
        idx = emb.indices(m)
        if len(idx) > MAX_ROWS:
            idx = np.sort(rng.choice(idx, MAX_ROWS, replace=False))
        by_mod[m] = vectors[idx]
    out: dict[str, Any] = {"counts": {m.value: int(len(emb.indices(m))) for m in mods}, "per_modality": {},
                           "pairs": {}}
    for m, x in by_mod.items():
        out["per_modality"][m.value] = {
            "effective_rank": round(effective_rank(x), 3) if len(x) > 1 else None,
            "spectrum": spectrum(x)[:64] if len(x) > 1 else [],
            "uniformity": round(uniformity(x[:2000]), 4) if len(x) > 1 else None,
            "mean_norm_of_centroid": round(float(np.linalg.norm(x.mean(axis=0))), 4),
        }
    out["modality_bias"] = modality_bias(by_mod)
    for i, a in enumerate(mods):
        for b in mods[i + 1:]:
            out["pairs"][f"{a.value}|{b.value}"] = pair_diagnostics(emb, by_mod, a, b, k, seed)
    return out


def pair_diagnostics(emb: GalleryEmbedding, by_mod: dict[Modality, np.ndarray], a: Modality, b: Modality,
                     k: int, seed: int) -> dict[str, Any]:
    xa, xb = by_mod[a], by_mod[b]
    gap = float(np.linalg.norm(xa.mean(axis=0) - xb.mean(axis=0)))
    n = min(len(xa), len(xb))
    rng = np.random.default_rng(seed)
    pa, pb = xa[rng.choice(len(xa), n, replace=False)], xb[rng.choice(len(xb), n, replace=False)]
    probe = linear_probe_accuracy(np.concatenate([pa, pb]), np.repeat([0, 1], n), seed) if n >= 2 else float("nan")
    out: dict[str, Any] = {"centroid_distance": round(gap, 4), "linear_probe_accuracy": round(probe, 4)}
    for src, dst, qs, gs in ((a, b, xa, xb), (b, a, xb, xa)):
        occ = k_occurrence(qs, gs, k)
        out[f"hubness {src.value}->{dst.value}"] = {"k": k, "skewness": round(skewness(occ), 4),
                                                    "never_retrieved": round(float((occ == 0).mean()), 4),
                                                    "max_occurrence": int(occ.max()) if len(occ) else 0}
    qa, gb, shared = paired_vectors(emb, a, b)
    if len(shared) > k:
        if len(shared) > MAX_ROWS:
            keep = np.sort(rng.choice(len(shared), MAX_ROWS, replace=False))
            qa, gb = qa[keep], gb[keep]
        out["paired"] = len(qa)
        out["alignment"] = round(alignment(qa, gb), 4)
        intra_a, intra_b = _knn_sets(qa, k), _knn_sets(gb, k)
        # the partner itself is not a neighbour
        inter = [set(row.tolist()) for row in top_k(qa, gb, k, skip_partner=True)]
        out["neighbour_agreement"] = {"k": k, "intra": round(_jaccard(intra_a, intra_b), 4),
                                      "inter": round(_jaccard(intra_a, inter), 4)}
    return out


def modality_bias(by_mod: dict[Modality, np.ndarray], cap: int = 2000) -> dict[str, dict[str, float]]:
    """Own-modality rate of the top-1 neighbour in a pool of every modality, against the own share."""
    if len(by_mod) < 2:
        return {}
    pools = {m: x[:cap] for m, x in by_mod.items()}
    allx = np.concatenate(list(pools.values()))
    labels = np.concatenate([np.full(len(x), i) for i, x in enumerate(pools.values())])
    sims = allx @ allx.T
    np.fill_diagonal(sims, -np.inf)
    top = labels[np.argmax(sims, axis=1)]
    out = {}
    for i, m in enumerate(pools):
        mine = labels == i
        share = float((mine.sum() - 1) / (len(labels) - 1))
        out[m.value] = {"own_modality_top1": round(float((top[mine] == i).mean()), 4),
                        "own_share_of_pool": round(share, 4)}
    return out
