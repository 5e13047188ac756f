"""Zero-shot biomarker inference by retrieval, as the Haiku authors do in their published notebooks: an H&E
patch (and its clinical text) retrieves the nearest mIF patches of a reference gallery, and each marker's
expression is the score-weighted mean of theirs.

- fused score of a reference mIF patch m: w·cos(H&E, m) + (1 - w)·cos(text, m) (their w = 0.8; no text: w = 1);
- the top k (their k = 5), weighted by a softmax of the scores at the model's logit scale (CLIP's own
  temperature: the scores are cosines, the softmax turns them into a distribution the way the model was trained to);
- the target per marker: the patch's mean channel intensity, z-scored per marker across the reference gallery;
- an interval per marker: the 2.5 and 97.5 percentiles over bootstrap resamples of the k neighbours.

Nothing here is a mechanism of the tissue: it is what the model's space says about markers it did not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MEASURES = {"mean": "mean channel intensity of each mIF patch",
            "positive": "fraction of each mIF patch's cells positive for the marker (cells: nuclear-stain peaks; "
                        "positive: above Otsu's split of all reference cells; the nuclear channel: the cell count)"}
BOOTSTRAP = 200  # resamples of the neighbours for each interval
W_HE = 0.8  # the notebooks' weight of the H&E similarity
K = 5  # the notebooks' neighbours


def mean_intensity(stacks: np.ndarray) -> np.ndarray:
    """[N, C] mean of each channel of [N, C, H, W] stacks (the measure the targets are made of)."""
    x = np.asarray(stacks, np.float64)
    return x.reshape(x.shape[0], x.shape[1], -1).mean(axis=2)


@dataclass
class Standardiser:
    """z-scores per marker with the reference gallery's mean and spread."""

    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> Standardiser:
        v = np.asarray(values, np.float64)
        sd = v.std(axis=0)
        return cls(v.mean(axis=0), np.where(sd > 0, sd, 1.0))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, np.float64) - self.mean) / self.sd


@dataclass
class Inferred:
    """One patch's inferred profile: per marker the value (z), its interval, and the neighbours it came from."""

    markers: list[str]
    value: np.ndarray  # [C]
    low: np.ndarray  # [C]
    high: np.ndarray  # [C]
    neighbours: np.ndarray  # [k] reference rows, best first
    weights: np.ndarray  # [k] their weights (softmax, or score-proportional)
    scores: np.ndarray  # [k] their fused scores
    boot: np.ndarray | None = None  # [BOOTSTRAP, C] the profile over resamples of the neighbours

    def to_dict(self) -> dict[str, object]:
        return {"markers": {m: {"z": round(float(v), 4), "low": round(float(lo), 4), "high": round(float(hi), 4)}
                            for m, v, lo, hi in zip(self.markers, self.value, self.low, self.high, strict=True)},
                "neighbours": [{"row": int(r), "score": round(float(s), 5), "weight": round(float(w), 4)}
                               for r, s, w in zip(self.neighbours, self.scores, self.weights, strict=True)]}


def fused_scores(reference: np.ndarray, he: np.ndarray, text: np.ndarray | None, w: float = W_HE) -> np.ndarray:
    """[N] w·cos(H&E, m) + (1 - w)·cos(text, m) for every reference mIF vector m (unit vectors)."""
    ref = np.asarray(reference, np.float32)
    s = ref @ np.asarray(he, np.float32)
    if text is None or w >= 1.0:
        return s.astype(np.float64)
    return w * s.astype(np.float64) + (1.0 - w) * (ref @ np.asarray(text, np.float32)).astype(np.float64)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _score_weights(x: np.ndarray) -> np.ndarray:
    """Weights proportional to the scores (negative ones count as 0; all equal when none is positive)."""
    pos = np.clip(x, 0.0, None)
    total = pos.sum()
    return pos / total if total > 0 else np.full(len(x), 1.0 / len(x))


WEIGHTINGS = ("softmax", "score")


def infer(reference: np.ndarray, targets: np.ndarray, he: np.ndarray, text: np.ndarray | None,
          markers: Sequence[str], scale: float, w: float = W_HE, k: int = K,
          rng: np.random.Generator | None = None, weighting: str = "softmax") -> Inferred:
    """The profile of one H&E patch (and text) from the reference mIF vectors [N, D] and their targets [N, C].
    `weighting`: softmax of the scores at the model's scale (the notebooks' inference), or proportional to the
    scores (their counterfactuals, over many more neighbours)."""
    if not 0.0 <= w <= 1.0 or not np.isfinite(w):
        raise ValueError(f"the H&E weight is between 0 and 1 (got {w})")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting is one of {', '.join(WEIGHTINGS)} (got {weighting!r})")
    k = max(1, min(int(k), len(reference)))
    s = fused_scores(reference, he, text, w)
    top = np.argpartition(-s, k - 1)[:k]
    top = top[np.argsort(-s[top], kind="stable")]

    def weigh(x: np.ndarray) -> np.ndarray:
        return _softmax(scale * x) if weighting == "softmax" else _score_weights(x)

    weights = weigh(s[top])
    value = weights @ targets[top]
    rng = rng or np.random.default_rng(0)
    picks = rng.integers(0, k, (BOOTSTRAP, k))
    boot = np.array([weigh(s[top][p]) @ targets[top][p] for p in picks])
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    return Inferred(list(markers), value, low, high, top, weights, s[top], boot)


def pearson_per_marker(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """[C] Pearson r of each marker over the query patches; nan where either side is constant."""
    p, t = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    pc, tc = p - p.mean(axis=0), t - t.mean(axis=0)
    denom = np.sqrt((pc**2).sum(axis=0) * (tc**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (pc * tc).sum(axis=0) / denom, np.nan)


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """A ridge regression from embeddings to targets fitted on the reference gallery (the baseline a model's
    space must beat without retrieval)."""
    from sklearn.linear_model import Ridge

    return np.asarray(Ridge(alpha=alpha).fit(train_x, train_y).predict(x))


@dataclass
class MarkersInferred:
    """The profile, and the reference patches it came from (their files)."""

    inferred: Inferred
    neighbour_sources: list[str]
    reference_count: int
    w: float
    with_text: bool
    he: str = ""  # the H&E patch's file
    reference: str = ""  # the reference gallery
    text: str | None = None
    skipped: list[str] = field(default_factory=list)  # reference stacks left out: "file: reason"
    target: str = "mean"  # "mean" channel intensity, or "positive" cell fraction
    raw: np.ndarray | None = None  # [C] the profile in the target's own units (intensity; fraction, cell count)
    nuclear: str | None = None  # the marker whose positive-cell value is the cell count

    def to_dict(self) -> dict[str, Any]:
        out = self.inferred.to_dict()
        neighbours: list[dict[str, Any]] = out["neighbours"]  # type: ignore[assignment]
        for n, source in zip(neighbours, self.neighbour_sources, strict=True):
            n["source"] = source
        if self.raw is not None:
            for m, v in zip(self.inferred.markers, self.raw, strict=True):
                out["markers"][m]["value"] = round(float(v), 4)  # type: ignore[index]
        return {**out, "reference_patches": self.reference_count, "w_he": self.w, "with_text": self.with_text,
                "left_out": self.skipped, "target": self.target,
                "measure": MEASURES[self.target] + ", z-scored per marker across the reference gallery ('value': "
                           "before z-scoring); interval: 2.5-97.5 percentiles over bootstrap resamples of the "
                           "neighbours"}
