"""Geometry of a model's embedding space, measured on a gallery.

- Modality gap (Liang et al., 2022): distance between modality centroids, and how well a linear probe
  (logistic regression, held-out accuracy) tells the modalities apart; 0.5 = indistinguishable.
- Alignment and uniformity (Wang & Isola, 2020) on paired samples: E||x-y||^2 and log E exp(-2||x-y||^2).
- Singular value spectrum and effective rank (Roy & Vetterli, 2007: exp of the entropy of the normalised
  singular values) per modality: dimensional collapse shows as a low effective rank. Reported on the
  mean-centred vectors (the spread around the centroid; what collapse changes) and, as Roy & Vetterli
  define it, on the matrix as given (where a large shared mean counts as one more direction).
- Hubness (Radovanovic et al., 2010): skewness of the k-occurrence N_k (how often each gallery item is in
  someone's top k), plus the share of items never retrieved: across modalities (queries of one, gallery of
  the other) and, as Radovanovic et al. count it, within one modality with each item left out of its own list.
- Cosine distributions: within each modality, across each pair, and of paired items (a sample's own
  image and text): the modality gap shows as cross-modal cosines far below within-modal ones.
- Modality bias: when a query may match every modality, how often its nearest neighbour (itself
  excluded) has its own modality, against that modality's share of the pool.
- Neighbour agreement: for paired samples, the overlap (Jaccard) of a sample's k nearest samples found
  within modality A and within modality B (intra), and of A's intra-modal neighbours with the neighbours
  its A-vector finds among B (inter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cl_core import objectives
from cl_core.analysis.evaluation import paired_vectors
from cl_core.embed.gallery import GalleryEmbedding
from cl_core.modality import Modality
from cl_core.task import TaskState

MAX_ROWS = 5000  # diagnostics subsample big galleries (deterministically) to stay interactive


COSINE_BINS = np.linspace(-1.0, 1.0, 81)  # histogram edges for cosine distributions
COSINE_SAMPLE = 1000  # vectors per modality for the cosine histograms
HUBS_SHOWN = 10  # the most retrieved items listed per direction

DEFINITIONS = {
    "effective_rank": "exp of the entropy of the normalised singular values of the mean-centred vectors",
    "effective_rank_as_given": "the same on the vectors as given, not centred (Roy & Vetterli's definition)",
    "spectrum": "singular values of the mean-centred vectors, divided by the largest",
    "uniformity": "log E exp(-2 ||x_i - x_j||^2) over pairs of one modality (Wang & Isola); lower is more uniform",
    "mean_norm_of_centroid": "length of the modality's mean unit vector: 0 spread evenly, 1 all alike",
    "centroid_distance": "distance between the two modalities' mean vectors: the modality gap (Liang et al.)",
    "linear_probe_accuracy": "held-out accuracy of a logistic regression telling the two modalities apart "
                             "(0.5: indistinguishable)",
    "alignment": "E ||x - y||^2 over a sample's paired items (Wang & Isola); lower is better aligned",
    "hubness": "k-occurrence N_k: how often each item is among the k nearest of a query; skewness of N_k, "
               "share never retrieved, largest N_k. Across modalities (queries of one modality, items of the "
               "other) and within one modality with each item left out of its own list (Radovanovic et al.)",
    "modality_bias": "in a pool of every modality, how often an item's nearest neighbour (itself excluded) has "
                     "its own modality, against that modality's share of the pool",
    "neighbour_agreement": "Jaccard overlap of a sample's k nearest samples found within modality A and within "
                           "B (intra), and of A's neighbours with those its A-vector finds among B (inter)",
    "cosines": "histograms of cosine similarity: within each modality (distinct items), across each pair "
               "(every item of one against every item of the other), and of paired items",
}


@dataclass
class Diagnosis:
    """A gallery's geometry: `report` (JSON-ready; `definitions` says what each figure is) and, when measured
    for an open index, `index_rows` ([n] int64, each gallery row's row in that index: hubs are selected by it)."""

    embedding: GalleryEmbedding
    report: dict[str, Any]
    index_rows: np.ndarray | None = None
    second: Diagnosis | None = None  # the same gallery as a second model embeds it (drawn beside, dashed)
    second_name: str = ""


def effective_rank(x: np.ndarray, centred: bool = True) -> float:
    s = np.linalg.svd(x - x.mean(axis=0) if centred else x, compute_uv=False)
    p = s / s.sum() if s.sum() > 0 else s
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def spectrum(x: np.ndarray) -> list[float]:
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    return (s / s[0]).round(5).tolist() if len(s) and s[0] > 0 else []


def alignment(x: np.ndarray, y: np.ndarray) -> float:
    """E||x_i - y_i||^2 over paired rows (cl_core.objectives.alignment, the training term)."""
    # copies: the rows may be a read-only view of a memory-mapped index, which torch will not wrap
    return float(objectives.alignment([torch.from_numpy(np.array(x, np.float32)),
                                       torch.from_numpy(np.array(y, np.float32))]))


def uniformity(x: np.ndarray, t: float = 2.0) -> float:
    """log E exp(-t ||x_i - x_j||^2) over pairs (cl_core.objectives.uniformity, the training term)."""
    return float(objectives.uniformity([torch.from_numpy(np.array(x, np.float32))], t))


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
        # topk keeps k indices a row; argpartition would make a negated copy and an int64 index per score
        # (three times the block)
        out[start:start + len(scores)] = torch.from_numpy(scores).topk(k, dim=1, sorted=False).indices.numpy()
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


def diagnose(emb: GalleryEmbedding, k: int = 10, seed: int = 0, state: TaskState | None = None) -> dict[str, Any]:
    """Every measure above on `emb` (each modality subsampled to MAX_ROWS, deterministically). Hubs and
    items are named by their row in `emb`. `state` reports a step per modality and pair, and cancels."""
    state = state or TaskState()
    rng = np.random.default_rng(seed)
    vectors = np.asarray(emb.vectors, np.float32)
    mods = emb.modalities
    picked: dict[Modality, np.ndarray] = {}
    for m in mods:
        idx = emb.indices(m)
        if len(idx) > MAX_ROWS:
            idx = np.sort(rng.choice(idx, MAX_ROWS, replace=False))
        picked[m] = idx
    by_mod = {m: vectors[idx] for m, idx in picked.items()}
    out: dict[str, Any] = {"counts": {m.value: int(len(emb.indices(m))) for m in mods}, "per_modality": {},
                           "pairs": {}, "definitions": DEFINITIONS}
    pairs = [(a, b) for i, a in enumerate(mods) for b in mods[i + 1:]]
    steps, done = len(by_mod) + len(pairs) + 1, 0
    for m, x in by_mod.items():
        state.check_cancelled()
        state.set_progress(done, steps, f"measuring {m.value}")
        done += 1
        out["per_modality"][m.value] = {
            "effective_rank": round(effective_rank(x), 3) if len(x) > 1 else None,
            "effective_rank_as_given": round(effective_rank(x, centred=False), 3) if len(x) > 1 else None,
            "spectrum": spectrum(x)[:64] if len(x) > 1 else [],
            "uniformity": round(uniformity(x[:2000]), 4) if len(x) > 1 else None,
            "mean_norm_of_centroid": round(float(np.linalg.norm(x.mean(axis=0))), 4),
        }
        if len(x) > k:
            occ = np.bincount(top_k(x, x, k, skip_partner=True).ravel(), minlength=len(x))
            out["per_modality"][m.value]["hubness_within"] = _hubness(occ, k, picked[m])
    out["modality_bias"] = modality_bias(by_mod)
    for a, b in pairs:
        state.check_cancelled()
        state.set_progress(done, steps, f"measuring {a.value} against {b.value}")
        done += 1
        out["pairs"][f"{a.value}|{b.value}"] = pair_diagnostics(emb, by_mod, a, b, k, seed, picked)
    state.check_cancelled()
    out["cosines"] = cosine_histograms(emb, by_mod, seed)
    state.set_progress(steps, steps, "measured")
    return out


def _hubness(occ: np.ndarray, k: int, rows: np.ndarray) -> dict[str, Any]:
    """Skewness of N_k, share never retrieved, largest N_k, the histogram of N_k (count of items with N_k = 0,
    1, ...) and the most retrieved items (their rows in the gallery, with N_k)."""
    top = np.argsort(-occ, kind="stable")[:HUBS_SHOWN]
    return {"k": k, "skewness": round(skewness(occ), 4), "never_retrieved": round(float((occ == 0).mean()), 4),
            "max_occurrence": int(occ.max()) if len(occ) else 0, "histogram": np.bincount(occ).tolist(),
            "hubs": [[int(rows[i]), int(occ[i])] for i in top]}


def cosine_histograms(emb: GalleryEmbedding, by_mod: dict[Modality, np.ndarray], seed: int) -> dict[str, Any]:
    """Counts of cosines in COSINE_BINS: 'a' within a modality, 'a|b' across, 'a|b paired' of a sample's items."""
    rng = np.random.default_rng(seed)
    few = {m: x[np.sort(rng.choice(len(x), min(len(x), COSINE_SAMPLE), replace=False))] for m, x in by_mod.items()}
    out: dict[str, Any] = {"bins": COSINE_BINS.round(4).tolist()}
    mods = list(few)
    for i, a in enumerate(mods):
        xa = few[a]
        within = (xa @ xa.T)[np.triu_indices(len(xa), 1)]
        out[a.value] = np.histogram(within, COSINE_BINS)[0].tolist()
        for b in mods[i + 1:]:
            out[f"{a.value}|{b.value}"] = np.histogram(xa @ few[b].T, COSINE_BINS)[0].tolist()
            qa, gb, _ = paired_vectors(emb, a, b)
            if len(qa):
                keep = rng.choice(len(qa), min(len(qa), MAX_ROWS), replace=False)
                paired = np.einsum("ij,ij->i", qa[keep], gb[keep])
                out[f"{a.value}|{b.value} paired"] = np.histogram(paired, COSINE_BINS)[0].tolist()
    return out


def pair_diagnostics(emb: GalleryEmbedding, by_mod: dict[Modality, np.ndarray], a: Modality, b: Modality,
                     k: int, seed: int, picked: dict[Modality, np.ndarray] | None = None) -> dict[str, Any]:
    xa, xb = by_mod[a], by_mod[b]
    gap = float(np.linalg.norm(xa.mean(axis=0) - xb.mean(axis=0)))
    n = min(len(xa), len(xb))
    rng = np.random.default_rng(seed)
    pa, pb = xa[rng.choice(len(xa), n, replace=False)], xb[rng.choice(len(xb), n, replace=False)]
    probe = linear_probe_accuracy(np.concatenate([pa, pb]), np.repeat([0, 1], n), seed) if n >= 2 else float("nan")
    out: dict[str, Any] = {"centroid_distance": round(gap, 4), "linear_probe_accuracy": round(probe, 4)}
    rows = picked or {m: np.arange(len(x)) for m, x in by_mod.items()}
    for src, dst, qs, gs in ((a, b, xa, xb), (b, a, xb, xa)):
        out[f"hubness {src.value}->{dst.value}"] = _hubness(k_occurrence(qs, gs, k), k, rows[dst])
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
