"""Relevance a person can read: a hit's raw cosine mapped to the probability that it is relevant.

Cosine scales differ per model and per modality pair (text->image may mean "a match" at 0.3, text->text at
0.7), and a per-query z-score always finds something "relevant", even for nonsense. So, like the Cosine
Adapter of the relevance-filtering literature, each (query modality, target modality) pair gets a mapping
from the raw cosine to a probability that depends on the query:

    logit P(relevant) = a * cosine + b * z + c,   z = (cosine - mu_q) / sd_q

where mu_q and sd_q are the query's mean and spread of scores over the target modality, had exactly from
the target's mean vector and covariance (mu_q = q.m, sd_q^2 = q^T C q: no rows scored at search time).

The mapping is fitted when the index is built, from what the gallery knows: rows sharing a sample id
(the same sample in another modality) or a label are relevant to each other, the rest are not. It is a
weighted logistic regression whose negatives are weighted to the target's real size, so the probability
holds for a query against the whole gallery, not for a balanced sample. One threshold then fits every
pair, and modalities merge on one scale.

Without such pairs for a modality pair (a gallery of one modality and no labels, or fusions other than
the mean) the stated fallback is an extreme-value reading of z: the probability that no unrelated item of
the target would score this high if unrelated scores were normal with the query's mean and spread,
Phi(z) ** n. It is a weaker claim, and hits say which method gave their score.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

FIT_QUERIES = 512  # query rows per modality pair
FIT_NEGATIVES = 2048  # target rows sampled as negatives for every query
MIN_POSITIVES = 20
STATS_ROWS = 65_536  # rows sampled for a target's mean and covariance
MAX_LABEL_SHARE = 0.10
ANY = "*"  # a query of several modalities, or of unknown modality


@dataclass(frozen=True)
class PairFit:
    """logit = a * cosine + b * z + c, for queries of `query` against items of `target`."""

    query: str
    target: str
    coef: tuple[float, ...]
    positives: int  # relevant pairs seen in the fit
    queries: int
    basis: str  # "sample ids", "labels" or "sample ids and labels"

    def to_dict(self) -> dict:
        return asdict(self)

    @functools.cached_property
    def description(self) -> str:
        """In words, for a hit's tooltip (made once: every hit of a search carries it)."""
        src = "any query" if self.query == ANY else f"{self.query} queries"
        return (f"fitted on this gallery ({src} against {self.target} items: {self.positives:,} relevant pairs "
                f"from {self.queries:,} queries, relevant = sharing {self.basis})")


def mapping_for(fits: dict[tuple[str, str], PairFit], query: str, target: str) -> PairFit | None:
    """The pair's own mapping; else, across modalities, the one fitted on every kind of query. Within one
    modality without its own mapping, none: cosines within a modality run on another scale than across."""
    if (query, target) in fits:
        return fits[(query, target)]
    return None if query == target else fits.get((ANY, target))


def target_stats(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[D+1, D] float32: the target rows' mean vector, then their covariance (a sample of rows when many)."""
    n = len(vectors)
    rows = np.sort(rng.choice(n, size=STATS_ROWS, replace=False)) if n > STATS_ROWS else slice(None)
    x = np.asarray(vectors[rows], np.float64)
    mean = x.mean(axis=0)
    cov = (x - mean).T @ (x - mean) / max(len(x), 1)
    return np.vstack([mean[None, :], cov]).astype(np.float32)


def query_stats(stats: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sd) of each query's scores over the target, from its mean and covariance."""
    q = np.atleast_2d(np.asarray(q, np.float32))
    mu = q @ stats[0]
    var = ((q @ stats[1:]) * q).sum(axis=1)
    return mu, np.sqrt(np.maximum(var, 1e-12))


def query_stat(stats: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """(mu, sd) of one query vector's scores over the target (a search): one matrix-vector product with the
    mean and covariance stacked, and a dot product; no arrays made around them."""
    y = stats @ v  # [mean . v, (C v)...]: one pass over the statistics, which faiss has pushed out of cache
    var = float(y[1:] @ v)
    return float(y[0]), math.sqrt(max(var, 1e-12))


N_COEF = 3  # cosine, z, intercept


def features(score: np.ndarray, mu: np.ndarray | float, sd: np.ndarray | float) -> np.ndarray:
    """[cosine, z] per score: the raw scale and where it stands among this query's scores."""
    return np.stack([score, (score - mu) / sd], axis=1)


def logit_of(fit: PairFit | None, score: float, z: float, n_target: int) -> float:
    """The relevance logit of one score and its z (the fallback when no fit): a * cosine + b * z + c, the
    `features` the fit was made on, written out. Plain floats: a hit list is ten values, where numpy's
    calls cost more than the arithmetic."""
    if fit is not None:
        a, b, c = fit.coef
        return a * score + b * z + c
    return extreme_value_logit(z, n_target)


_INV_SQRT2 = 1 / math.sqrt(2)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def extreme_value_logit(z: float, n: int) -> float:
    """logit of Phi(z)^n, computed in log space (Phi(z) is 1 to machine precision for large z)."""
    if z >= 0:  # log Phi(z), accurate in both tails
        log_phi = math.log1p(-0.5 * math.erfc(z * _INV_SQRT2))
    elif z > -37:
        log_phi = math.log(0.5 * math.erfc(-z * _INV_SQRT2))
    else:  # beyond erfc's range: the Mills-ratio expansion of Phi(z)
        log_phi = -0.5 * z * z - math.log(-z) - _HALF_LOG_2PI + math.log1p(-1 / (z * z) + 3 / z**4)
    log_p = n * log_phi  # log Phi(z)^n, <= 0
    return log_p - math.log(-math.expm1(min(log_p, -1e-300)))


@functools.lru_cache(maxsize=64)
def fallback_description(n: int) -> str:
    return (f"no relevant pairs to fit on for this modality pair: the chance that none of the {n:,} items would "
            "score this high by chance, if unrelated scores were normal with this query's mean and spread")


def probability_of(logit: float) -> float:
    """The sigmoid of one logit (bounded: exp's argument kept within +-500)."""
    return 1.0 / (1.0 + math.exp(min(max(-logit, -500.0), 500.0)))


def probability(logit: np.ndarray | float) -> np.ndarray:
    x = np.asarray(logit, np.float64)
    return 1.0 / (1.0 + np.exp(np.minimum(np.maximum(-x, -500.0), 500.0)))  # (np.clip's checks cost ~5 us)


def fit_pairs(vectors: np.ndarray, modalities: Sequence[str], sample_ids: Sequence[str],
              labels: Sequence[str | None], parts: dict[str, tuple[int, int]], stats: dict[str, np.ndarray],
              seed: int = 0) -> dict[tuple[str, str], PairFit]:
    """A mapping for every (query modality, target modality) pair the gallery has relevant pairs for, and one
    per target for queries of any modality (ANY)."""
    rng = np.random.default_rng(seed)
    sid_codes = _codes(sample_ids)
    label_codes = _codes([lab if lab else None for lab in labels])
    has_labels = labels_are_matches(label_codes)
    if not has_labels:
        label_codes = np.full(len(label_codes), -1, np.int64)
    fits: dict[tuple[str, str], PairFit] = {}
    for t, (t0, t1) in parts.items():
        pooled: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, int]] = []
        for s, (s0, s1) in parts.items():
            data = _pair_data(vectors, sid_codes, label_codes, (s0, s1), (t0, t1), stats[t], rng)
            if data is None:
                continue
            pooled.append(data)
            basis = "sample ids" if not has_labels else ("labels" if s == t else "sample ids and labels")
            fits[(s, t)] = _fit(s, t, data, basis)
        if pooled:
            total = (np.concatenate([d[0] for d in pooled]), np.concatenate([d[1] for d in pooled]),
                     np.concatenate([d[2] for d in pooled]), sum(d[3] for d in pooled), sum(d[4] for d in pooled))
            fits[(ANY, t)] = _fit(ANY, t, total, "sample ids and labels" if has_labels else "sample ids")
    return fits


def labels_are_matches(codes: np.ndarray) -> bool:
    """Labels count as relevance only when they are selective: a label most items share (an organ, a
    coarse class) makes a category, not a match; the median labelled item's label must cover at most
    MAX_LABEL_SHARE of the labelled items."""
    known = codes[codes >= 0]
    if not len(known):
        return False
    share = np.bincount(known)[known] / len(known)
    return float(np.median(share)) <= MAX_LABEL_SHARE


def _codes(values: Sequence[str | None]) -> np.ndarray:
    """Integer codes of values; None is -1 (never equal to anything)."""
    seen: dict[str, int] = {}
    return np.array([-1 if v is None else seen.setdefault(v, len(seen)) for v in values], np.int64)


def _pair_data(vectors: np.ndarray, sid: np.ndarray, lab: np.ndarray, src: tuple[int, int], tgt: tuple[int, int],
               stats: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int] | None:
    """(features [M, 2], relevant [M], weights [M], positives, queries) for one modality pair, or None when the
    gallery holds too few relevant pairs for it."""
    s0, s1 = src
    t0, t1 = tgt
    n_t = t1 - t0
    qrows = np.sort(rng.choice(np.arange(s0, s1), size=min(FIT_QUERIES, s1 - s0), replace=False))
    t_sid, t_lab = sid[t0:t1], lab[t0:t1]
    neg_rows = np.sort(rng.choice(n_t, size=min(FIT_NEGATIVES, n_t), replace=False))
    feats, rel, wts = [], [], []
    positives = queries = others = 0
    tv = np.asarray(vectors[t0:t1], np.float32)
    for start in range(0, len(qrows), 128):
        block = qrows[start:start + 128]
        q = np.asarray(vectors[block], np.float32)
        mu, sd = query_stats(stats, q)
        for i, row in enumerate(block):
            same = (t_sid == sid[row]) | ((t_lab == lab[row]) & (lab[row] >= 0))
            pos = np.flatnonzero(same)
            if not len(pos):
                continue
            neg = neg_rows[~same[neg_rows] & (neg_rows != row - t0)]
            if not len(neg):
                continue
            n_neg_total = n_t - len(pos) - (1 if t0 <= row < t1 else 0)
            idx = np.concatenate([pos, neg])
            cos = tv[idx] @ q[i]
            feats.append(features(cos, np.full_like(cos, mu[i]), np.full_like(cos, sd[i])))
            rel.append(np.r_[np.ones(len(pos)), np.zeros(len(neg))])
            wts.append(np.r_[np.ones(len(pos)), np.full(len(neg), n_neg_total / len(neg))])
            positives += len(pos)
            others += len(pos) - (1 if t0 <= row < t1 else 0)
            queries += 1
    if others < MIN_POSITIVES or queries < 5:  # an item matching itself is no evidence about pairs
        return None
    return np.concatenate(feats), np.concatenate(rel), np.concatenate(wts), positives, queries


def _fit(s: str, t: str, data: tuple[np.ndarray, np.ndarray, np.ndarray, int, int], basis: str) -> PairFit:
    x, y, w, positives, queries = data
    return PairFit(s, t, _logistic(x, y, w), positives, queries, basis)


def _logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, ridge: float = 1e-3, steps: int = 100
              ) -> tuple[float, ...]:
    """Weighted logistic regression by damped Newton steps on standardised features. A small ridge (relative
    to the positives' weight) keeps it finite when the gallery separates perfectly (self-matches, clean pairs);
    each step is halved until the penalised loss goes down, so it never diverges."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    centre = np.average(x, axis=0, weights=w)
    scale = np.sqrt(np.average((x - centre) ** 2, axis=0, weights=w)) + 1e-12
    X = np.hstack([(x - centre) / scale, np.ones((len(x), 1))])
    d = X.shape[1]
    lam = ridge * float(w[y > 0].sum())
    reg = np.diag([lam] * (d - 1) + [0.0])

    def loss(theta: np.ndarray) -> float:
        m = X @ theta
        return float(np.sum(w * (np.logaddexp(0.0, m) - y * m)) + 0.5 * theta @ reg @ theta)

    theta = np.zeros(d)
    theta[-1] = math.log(max(float(w[y > 0].sum()), 1e-9) / max(float(w[y == 0].sum()), 1e-9))
    current = loss(theta)
    for _ in range(steps):
        p = probability(X @ theta)
        grad = X.T @ (w * (p - y)) + reg @ theta
        hess = (X * (w * p * (1 - p))[:, None]).T @ X + reg + 1e-9 * np.eye(d)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-6:
            trial = loss(theta - t * step)
            if trial <= current:
                break
            t /= 2
        if t <= 1e-6:
            break
        theta, gain, current = theta - t * step, current - trial, trial
        if gain < 1e-10 * max(1.0, abs(current)):
            break
    slopes = theta[:-1] / scale  # back to the raw features' units
    return (*(float(v) for v in slopes), float(theta[-1] - slopes @ centre))
