"""Counterfactual text edits: keep the tissue fixed, change only the clinical text (stage II -> IV, grade,
outcome, organ), infer each patch's marker profile again, and measure the shift, as the Haiku authors'
notebooks do (fused weights 0.6 H&E / 0.4 text, the top 50 reference mIF patches weighted by their scores).

Per marker: the mean shift over the case's patches; an interval (2.5-97.5 percentiles of a two-level bootstrap:
the patches resampled, and for each its neighbours, so the interval carries the retrieval's own uncertainty, not
only the spread between patches); a paired Wilcoxon signed-rank test across the patches (original vs edited
profile), its p-values corrected across markers by Holm's step-down method (which holds the family-wise error
whatever the dependence between markers). A shift is called when both agree: the test rejects no shift and the
interval excludes 0 (a tiny shift that every patch shares passes the test alone; the interval says it is smaller
than what the retrieval can tell apart).

These are hypotheses about the model — what its space associates with the words — not mechanisms of disease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cl_core.analysis import biomarkers as bm

W_HE = 0.6  # the notebooks' H&E weight for counterfactuals
K = 50  # their neighbours
ALPHA = 0.05
CAVEAT = ("These shifts are hypotheses about the model (what its space associates with the edited words), "
          "not mechanisms of the disease.")


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (nan stays nan)."""
    p = np.asarray(p, np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m, running = len(order), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def wilcoxon_p(differences: np.ndarray) -> np.ndarray:
    """[C] two-sided paired Wilcoxon signed-rank p per marker over the rows of [P, C]; 1 where every difference
    is zero, nan with fewer than two patches."""
    from scipy.stats import wilcoxon

    d = np.asarray(differences, np.float64)
    if len(d) < 2:
        return np.full(d.shape[1], np.nan)
    out = np.ones(d.shape[1])
    for c in range(d.shape[1]):
        if np.any(d[:, c] != 0):
            out[c] = float(wilcoxon(d[:, c], zero_method="wilcox", alternative="two-sided").pvalue)
    return out


@dataclass
class Shift:
    """What editing the text did to the inferred profile of a case's patches."""

    markers: list[str]
    original: np.ndarray  # [P, C] the profiles with the original text
    edited: np.ndarray  # [P, C] with the edited text
    mean: np.ndarray  # [C] mean shift (edited - original)
    low: np.ndarray  # [C]
    high: np.ndarray  # [C]
    p: np.ndarray  # [C] Wilcoxon p (nan with one patch)
    p_holm: np.ndarray  # [C]
    w: float
    k: int
    interval_over: str  # "patches and neighbours", or "neighbours" (one patch)
    text: str = ""
    edited_text: str = ""
    patches: list[str] = field(default_factory=list)
    reference: str = ""  # the reference gallery
    target: str = "mean"  # what the profile measures (biomarkers.MEASURES)
    left_out: list[str] = field(default_factory=list)

    @property
    def significant(self) -> np.ndarray:
        """[C] where the interval excludes 0 and the corrected test rejects no shift (one patch: no test)."""
        outside = (self.low > 0) | (self.high < 0)
        if np.all(np.isnan(self.p_holm)):
            return outside
        return outside & (np.nan_to_num(self.p_holm, nan=1.0) < ALPHA)

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return round(float(x), 5) if np.isfinite(x) else None

        return {"markers": {m: {"shift": num(self.mean[c]), "low": num(self.low[c]), "high": num(self.high[c]),
                                "p": num(self.p[c]), "p_holm": num(self.p_holm[c]),
                                "significant": bool(self.significant[c]),
                                "original": num(self.original[:, c].mean()), "edited": num(self.edited[:, c].mean())}
                            for c, m in enumerate(self.markers)},
                "patches": self.patches, "reference": self.reference, "left_out": self.left_out, "text": self.text, "edited_text": self.edited_text,
                "w_he": self.w, "k": self.k, "interval_over": self.interval_over,
                "test": "paired Wilcoxon signed-rank across the patches, Holm-corrected across markers; a shift is "
                        "significant when p_holm < 0.05 and the interval excludes 0",
                "measure": "inferred " + bm.MEASURES[self.target] + ", z-scored per marker across the reference "
                           "gallery", "target": self.target,
                "caveat": CAVEAT}


def shift(reference: np.ndarray, targets: np.ndarray, he: np.ndarray, text: np.ndarray, edited: np.ndarray,
          markers: Sequence[str], scale: float, w: float = W_HE, k: int = K,
          rng: np.random.Generator | None = None) -> Shift:
    """The shift of the profiles of the H&E patches [P, D] when the text vector `text` [D] becomes `edited` [D]."""
    he = np.atleast_2d(np.asarray(he, np.float32))
    rng = rng or np.random.default_rng(0)
    before = [bm.infer(reference, targets, v, text, markers, scale, w, k, rng, "score") for v in he]
    after = [bm.infer(reference, targets, v, edited, markers, scale, w, k, rng, "score") for v in he]
    original = np.stack([x.value for x in before])
    changed = np.stack([x.value for x in after])
    diff = changed - original
    draws = np.stack([b.boot for b in after]) - np.stack([b.boot for b in before])  # type: ignore[misc]
    if len(he) >= 2:  # resample the patches, and for each a resample of its neighbours
        picks = rng.integers(0, len(he), (bm.BOOTSTRAP, len(he)))
        boot = draws[picks, rng.integers(0, draws.shape[1], picks.shape)].mean(axis=1)
        over = "patches and neighbours"
    else:
        boot = draws[0]
        over = "neighbours"
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    p = wilcoxon_p(diff)
    return Shift(list(markers), original, changed, diff.mean(axis=0), low, high, p, holm(p), w, k, over)
