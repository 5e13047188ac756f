"""Counterfactual text edits on held-out synthetic tissue (cl_core.analysis.counterfactual), against the world's
causal model.

1. The truth, by intervention in the world: the same patients drawn with a clinical variable set one way and the
   other (tissue.make_case(..., stage="II") vs stage="IV", every other draw shared), each marker's mean intensity
   (z-scored with the reference gallery's statistics) compared patch by patch. A marker is *moved* by the variable
   when the paired Wilcoxon test rejects no effect (p < 0.001) and the mean effect exceeds 0.05 z; its sign is the
   causal sign. Age and outcome have no causal path to the tissue (their effect is exactly 0).
2. The model: held-out cases (12 patches each, drawn with the variable at its first value, from a seed the demo
   model never saw), their clinical text edited to the second value (tissue.edit_text), each case's shift by
   cl_core.analysis.counterfactual.shift (0.6 H&E / 0.4 text, top 50 weighted by score, Wilcoxon across the case's
   patches, Holm across markers) over a reference gallery disjoint from the cases.
3. Reported per variable: for the markers it moves, how often the sign of a case's shift agrees with the causal sign
   (and how often it is also significant); for the markers it does not move, how often a case's shift stays within
   its interval (not significant) — where the model has learnt an association with no cause behind it, this is low,
   and that is a finding about the model.

    .venv/bin/python benchmarks/bench_counterfactual.py [--cases 30] [--patches 12] [--reference 600]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
RESULTS = Path(__file__).parent / "results"
# (variable, from, to): the edit made to each held-out case's text
EDITS = (("stage", "II", "IV"), ("grade", 1, 3), ("organ", "lung", "breast"), ("age", 50, 85),
         ("responder", False, True))


def main() -> None:
    from scipy.stats import wilcoxon

    from cl_core.analysis import biomarkers as bm
    from cl_core.analysis import counterfactual as cf
    from cl_core.demo.worlds import tissue as ts
    from cl_core.modality import ChannelStack, Item, Modality
    from cl_core.models.open import open_checkpoint
    from cl_core.resources import RESOURCES

    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=30)
    ap.add_argument("--patches", type=int, default=12)
    ap.add_argument("--reference", type=int, default=600)
    ap.add_argument("--truth-cases", type=int, default=150, help="patients per arm for the causal effects")
    ap.add_argument("--seed", type=int, default=4242, help="a world seed the demo model never saw")
    a = ap.parse_args()
    t0 = time.perf_counter()
    model = open_checkpoint(RESOURCES / "demo" / "tissue")
    scale = float(model.logit_scale)

    def encode(modality: Modality, data: list) -> np.ndarray:
        return np.asarray(model.encode(modality, [Item(f"x{i}", modality, d) for i, d in enumerate(data)]))

    ref = ts.make_world(a.seed, a.reference)
    ref_vec = encode(Modality.MULTICHANNEL, [ChannelStack(s.mif, ts.CHANNELS) for s in ref])
    z = bm.Standardiser.fit(bm.mean_intensity(np.stack([s.mif for s in ref])))
    targets = z(bm.mean_intensity(np.stack([s.mif for s in ref])))
    out: dict = {"model": model.name, "reference": a.reference, "cases": a.cases, "patches_per_case": a.patches,
                 "w_he": cf.W_HE, "k": cf.K, "markers": list(ts.CHANNELS), "variables": {}}
    for variable, low, high in EDITS:
        # 1. the causal effect of low -> high, paired over the same patients
        before = np.stack([z(bm.mean_intensity(np.stack([s.mif for s in ts.make_case(a.seed + 1, i, 2,
                                                                                       **{variable: low})])))
                           for i in range(a.truth_cases)]).reshape(-1, len(ts.CHANNELS))
        after = np.stack([z(bm.mean_intensity(np.stack([s.mif for s in ts.make_case(a.seed + 1, i, 2,
                                                                                      **{variable: high})])))
                          for i in range(a.truth_cases)]).reshape(-1, len(ts.CHANNELS))
        effect = (after - before).mean(axis=0)
        moved = np.zeros(len(ts.CHANNELS), bool)
        for c in range(len(ts.CHANNELS)):
            d = after[:, c] - before[:, c]
            if np.any(d != 0) and abs(effect[c]) > 0.05:
                moved[c] = wilcoxon(d).pvalue < 1e-3
        sign = np.sign(effect) * moved
        # 2. the model's shift on held-out cases, text edited low -> high
        shifts = []
        for i in range(a.cases):
            patches = ts.make_case(a.seed + 2, i, a.patches, **{variable: low})
            text = patches[0].text
            edited = ts.edit_text(text, variable, high)
            assert edited != text, (variable, text)
            he = encode(Modality.IMAGE, [p.he for p in patches])
            tv = encode(Modality.TEXT, [text, edited])
            shifts.append(cf.shift(ref_vec, targets, he, tv[0], tv[1], ts.CHANNELS, scale))
        mean = np.stack([s.mean for s in shifts])
        sig = np.stack([s.significant for s in shifts])
        agree = (np.sign(mean) == sign) & moved
        row = {"edit": f"{low} -> {high}",
               "causal_effect_z": dict(zip(ts.CHANNELS, np.round(effect, 3).tolist(), strict=True)),
               "moves": [m for m, x in zip(ts.CHANNELS, moved, strict=True) if x],
               "model_mean_shift_z": dict(zip(ts.CHANNELS, np.round(mean.mean(axis=0), 3).tolist(), strict=True))}
        if moved.any():
            row["sign_agrees"] = round(float(agree[:, moved].mean()), 3)
            row["sign_agrees_and_significant"] = round(float((agree & sig)[:, moved].mean()), 3)
        if (~moved).any():
            row["unmoved_within_interval"] = round(float((~sig[:, ~moved]).mean()), 3)
        out["variables"][variable] = row
        print(variable, json.dumps(row), flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "counterfactual.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
