"""Contrastive objectives from the literature, exact and batch-vectorised, and the fusion scores that
search, the training cards and diagnostics share (below all three, so each uses this one definition).

Every function takes `embeddings`: one [N, D] tensor per modality (or view); row i of every tensor belongs
to sample i. Rows are L2-normalised here and the loss is computed in fp32 (inputs may be bf16/fp16), so
callers pass raw tower outputs. `logit_scale` is the inverse temperature 1/τ (a float or a learnable
tensor, as in CLIP).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cl_core.errors import ClensError

Scalar = float | Tensor


def _prep(embeddings: Sequence[Tensor], at_least: int = 2) -> list[Tensor]:
    if len(embeddings) < at_least:
        raise ValueError(f"needs at least {at_least} embedding tensors, got {len(embeddings)}")
    shapes = {tuple(e.shape) for e in embeddings}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"every embedding tensor must be [N, D] with the same N and D, got {sorted(shapes)}")
    return [F.normalize(e.float(), dim=-1) for e in embeddings]


def _pairs(n: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(n), 2))


def info_nce(embeddings: Sequence[Tensor], logit_scale: Scalar = 1 / 0.07) -> Tensor:
    """Symmetric InfoNCE of CLIP (Radford et al., 2021; van den Oord et al., 2018).

    For modalities a, b with S = s · A Bᵀ:  L_ab = ½ [CE(S, I) + CE(Sᵀ, I)], CE the row-wise cross-entropy
    with the matching row as target. With M > 2 modalities: the mean of L_ab over all M(M-1)/2 pairs.
    """
    z = _prep(embeddings)
    labels = torch.arange(z[0].shape[0], device=z[0].device)
    losses = []
    for a, b in _pairs(len(z)):
        logits = logit_scale * z[a] @ z[b].T
        losses.append(0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)))
    return torch.stack(losses).mean()


def siglip(embeddings: Sequence[Tensor], logit_scale: Scalar = 10.0, logit_bias: Scalar = -10.0) -> Tensor:
    """Pairwise sigmoid loss of SigLIP (Zhai et al., 2023).

    L_ab = -(1/N) Σ_i Σ_j log σ(y_ij (t · a_i·b_j + b)),  y_ij = +1 if i = j else -1, with learnable t and b.
    With M > 2 modalities: the mean over all pairs.
    """
    z = _prep(embeddings)
    n = z[0].shape[0]
    signs = 2 * torch.eye(n, device=z[0].device) - 1
    losses = []
    for a, b in _pairs(len(z)):
        logits = logit_scale * z[a] @ z[b].T + logit_bias
        losses.append(-F.logsigmoid(signs * logits).sum() / n)
    return torch.stack(losses).mean()


def dcl(embeddings: Sequence[Tensor], logit_scale: Scalar = 10.0) -> Tensor:
    """Decoupled contrastive loss (Yeh et al., ECCV 2022): the positive leaves the denominator.

    For anchor a_i against view b:  -s·a_i·b_i + log Σ_{v∈{a,b}} Σ_{j≠i} exp(s · a_i·v_j),
    averaged over i and over both anchor views; with M > 2 modalities, the mean over all pairs.
    """
    z = _prep(embeddings)
    n = z[0].shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=z[0].device)
    losses = []
    for a, b in _pairs(len(z)):
        for x, y in ((z[a], z[b]), (z[b], z[a])):
            pos = logit_scale * (x * y).sum(-1)
            cross = (logit_scale * x @ y.T).masked_fill(~off, float("-inf"))
            intra = (logit_scale * x @ x.T).masked_fill(~off, float("-inf"))
            neg = torch.logsumexp(torch.cat([cross, intra], dim=1), dim=1)
            losses.append((neg - pos).mean())
    return torch.stack(losses).mean()


def _view_products(z: list[Tensor]) -> Tensor:
    """[V, V, N]: sim[l, m, i] = <z_l[i], z_m[i]> (the same sample seen in views l and m)."""
    stack = torch.stack(z)
    return torch.einsum("lnd,mnd->lmn", stack, stack)


def mv_infonce(embeddings: Sequence[Tensor], logit_scale: Scalar = 5.0) -> Tensor:
    """Multi-view InfoNCE (Koromilas et al., "A Principled Framework for Multi-View Contrastive Learning").

    One term per sample over all V views:
        L_i = -log [ Σ_{l≠m} exp(s·<z_i^l, z_i^m>) / Σ_l Σ_{(j,m)≠(i,l)} exp(s·<z_i^l, z_j^m>) ],
    the denominator running over every other row of every view; L = mean_i L_i.
    """
    z = _prep(embeddings)
    v, n = len(z), z[0].shape[0]
    sims = logit_scale * _view_products(z)
    not_same = ~torch.eye(v, dtype=torch.bool, device=sims.device)
    log_pos = torch.logsumexp(sims[not_same], dim=0)  # [N], over ordered pairs l≠m
    allz = torch.cat(z)  # [V·N, D], row l·N + i
    full = logit_scale * allz @ allz.T
    full = full.masked_fill(torch.eye(v * n, dtype=torch.bool, device=full.device), float("-inf"))
    log_neg_rows = torch.logsumexp(full, dim=1).view(v, n)  # per row (l, i)
    log_neg = torch.logsumexp(log_neg_rows, dim=0)  # Σ over the sample's views
    return (log_neg - log_pos).mean()


def mv_dhel(embeddings: Sequence[Tensor], logit_scale: Scalar = 5.0) -> Tensor:
    """Multi-view decoupled hyperspherical energy loss (Koromilas et al.; DHEL: Koromilas et al., ICML 2024).

        L_i = -log [ Σ_{l<m} exp(s·<z_i^l, z_i^m>) / Π_l Σ_{j≠i} exp(s·<z_i^l, z_j^l>) ],  L = mean_i L_i:
    alignment across all views, uniformity within each view, decoupled from each other.
    """
    z = _prep(embeddings)
    v, n = len(z), z[0].shape[0]
    sims = logit_scale * _view_products(z)
    upper = torch.triu(torch.ones(v, v, dtype=torch.bool, device=sims.device), diagonal=1)
    log_pos = torch.logsumexp(sims[upper], dim=0)
    eye = torch.eye(n, dtype=torch.bool, device=sims.device)
    log_neg = sum(torch.logsumexp((logit_scale * x @ x.T).masked_fill(eye, float("-inf")), dim=1) for x in z)
    return (log_neg - log_pos).mean()


def multilinear_inner_product(*vectors: Tensor) -> Tensor:
    """MIP(a, b, c, ...) = Σ_d a_d b_d c_d ... (row-wise)."""
    out = vectors[0]
    for v in vectors[1:]:
        out = out * v
    return out.sum(-1)


def symile(embeddings: Sequence[Tensor], logit_scale: Scalar = 1 / 0.07, negatives: str = "n_squared",
           generator: torch.Generator | None = None) -> Tensor:
    """Symile (Saporta et al., NeurIPS 2024): contrast with the multilinear inner product of M ≥ 3 modalities.

    Each modality in turn is the anchor x; candidates are element-wise products of the other modalities'
    rows. negatives="n_squared": for 3 modalities every (b_j, c_k) combination is a candidate, laid out as
    N blocks b ⊙ roll(c, s) (the positive is block 0, column i), N² - 1 negatives per positive; with more
    modalities every combination of rolls. negatives="n": the other modalities' rows are shuffled
    independently (torch.randperm with `generator`) and the positives put on the diagonal, N - 1 negatives.
    L = mean over anchors of CE(s · logits, i).
    """
    z = _prep(embeddings, at_least=3)
    n = z[0].shape[0]
    labels = torch.arange(n, device=z[0].device)
    losses = []
    for anchor in range(len(z)):
        x = z[anchor]
        rest = [z[m] for m in range(len(z)) if m != anchor]
        if negatives == "n_squared":
            blocks = []
            for shifts in itertools.product(range(n), repeat=len(rest) - 1):
                prod = rest[0]
                for other, shift in zip(rest[1:], shifts, strict=True):
                    prod = prod * torch.roll(other, shifts=shift, dims=0)
                blocks.append(prod)
            logits = x @ torch.cat(blocks).T
        elif negatives == "n":
            prod = torch.ones_like(x)
            for other in rest:
                prod = prod * other[torch.randperm(n, generator=generator, device="cpu").to(x.device)]
            logits = x @ prod.T
            positives = multilinear_inner_product(x, *rest)
            logits = torch.where(torch.eye(n, dtype=torch.bool, device=x.device), positives[:, None], logits)
        else:
            raise ValueError("negatives must be 'n_squared' or 'n'")
        losses.append(F.cross_entropy(logit_scale * logits, labels))
    return torch.stack(losses).mean()


def gram_volume(anchor: Tensor, others: Sequence[Tensor], eps: float = 1e-8) -> Tensor:
    """[N, N] volumes: V[i, j] = sqrt(det G) of the parallelotope spanned by anchor_i and others[*]_j.

    G is the k x k Gram matrix of the k = 1 + len(others) unit vectors; the volume is 0 when they coincide
    and grows as they spread. det is clamped at eps so the gradient stays finite at perfect alignment.
    """
    n = anchor.shape[0]
    vecs = torch.stack([anchor[:, None, :].expand(n, n, -1)] + [o[None, :, :].expand(n, n, -1) for o in others],
                       dim=2)  # [N, N, k, D]
    gram = vecs @ vecs.transpose(-1, -2)  # [N, N, k, k]
    det = torch.linalg.det(gram)
    return torch.sqrt(det.clamp_min(eps))


def gram(embeddings: Sequence[Tensor], logit_scale: Scalar = 1 / 0.07, anchor: int = 0) -> Tensor:
    """GRAM (Cicchetti et al., ICLR 2025): the Gramian volume as (negative) similarity in a contrastive loss.

    V[i, j] = volume spanned by the anchor modality's row i and every other modality's row j;
    logits = -s · V;  L = ½ [CE(logits, I) + CE(logitsᵀ, I)] (anchor→data and data→anchor).
    """
    z = _prep(embeddings)
    volumes = gram_volume(z[anchor], [z[m] for m in range(len(z)) if m != anchor])
    logits = -logit_scale * volumes
    labels = torch.arange(z[0].shape[0], device=z[0].device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def alignment(embeddings: Sequence[Tensor], alpha: float = 2.0) -> Tensor:
    """Alignment (Wang & Isola, ICML 2020): E_i ||a_i - b_i||^α, mean over modality pairs."""
    z = _prep(embeddings)
    return torch.stack([(z[a] - z[b]).norm(dim=1).pow(alpha).mean() for a, b in _pairs(len(z))]).mean()


def uniformity(embeddings: Sequence[Tensor], t: float = 2.0) -> Tensor:
    """Uniformity (Wang & Isola, ICML 2020): log E_{i≠j} exp(-t ||x_i - x_j||²), mean over modalities."""
    z = _prep(embeddings, at_least=1)
    out = []
    for x in z:
        d2 = torch.pdist(x, p=2).pow(2)
        out.append(torch.logsumexp(-t * d2, dim=0) - math.log(d2.numel()))
    return torch.stack(out).mean()


OBJECTIVES = {"info_nce": info_nce, "siglip": siglip, "dcl": dcl, "mv_infonce": mv_infonce, "mv_dhel": mv_dhel,
              "symile": symile, "gram": gram}


# ---- fusion scores: how several query vectors score a candidate (search, cards, diagnostics) -------------

def fuse(vectors: np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of normalised query vectors, renormalised."""
    if weights is None:
        q = vectors[0].astype(np.float32) if len(vectors) == 1 else vectors.astype(np.float32).sum(axis=0)
    else:
        w = np.asarray(weights, np.float32)
        if len(w) != len(vectors):
            raise ClensError(f"{len(w)} weights for {len(vectors)} query items")
        q = (w[:, None] * vectors.astype(np.float32)).sum(axis=0)
    norm = math.sqrt(float(q @ q))
    if not np.isfinite(norm) or norm < 1e-8:
        raise ClensError("the fused query is a zero vector (weights cancel out)")
    return q / norm


def symile_vector(vectors: np.ndarray) -> np.ndarray:
    """The elementwise product of the query vectors: <product, g> is Symile's multilinear inner product."""
    return np.prod(vectors.astype(np.float32), axis=0)


def query_gram_volume(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Volume spanned by the query vectors plus each candidate row (all unit vectors); smaller = more aligned."""
    q = queries.astype(np.float64)
    a = q @ q.T
    det_a = float(np.linalg.det(a))
    a_inv = np.linalg.pinv(a)
    b = candidates.astype(np.float64) @ q.T  # [n, k]
    quad = np.einsum("nk,kj,nj->n", b, a_inv, b)
    return np.sqrt(np.clip(det_a * (1.0 - quad), 0.0, None))


def fusion_scores(fusion: str, queries: np.ndarray, candidates: np.ndarray,
                  weights: Sequence[float] | None = None) -> np.ndarray:
    """[n] scores of every candidate row for the query set under `fusion`, computed directly (no index)."""
    if fusion == "gram":
        return -query_gram_volume(queries, candidates)
    vec = fuse(queries, weights) if fusion == "mean" else symile_vector(queries)
    return np.asarray(candidates, np.float32) @ vec
