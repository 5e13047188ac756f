"""Zero-shot biomarker inference on held-out synthetic tissue (cl_core.analysis.biomarkers), against the world's
ground truth: the bundled tissue model embeds a reference gallery and query cases drawn from a seed it was never
trained on, disjoint from each other (no query's own mIF patch can be its neighbour). Per marker, Pearson r
between the inferred profile and the query's own mIF mean intensities (z-scored with the reference gallery's
statistics), for H&E + text (w = 0.8), H&E alone, text alone, the same with the clinical text swapped for
another case's; and two baselines: the gallery mean (a constant: r undefined, mean absolute error given) and a
ridge probe on H&E embeddings fitted on the reference gallery.

    .venv/bin/python benchmarks/bench_biomarkers.py [--reference 600] [--queries 200] [--seed 4242]
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


def main() -> None:
    from cl_core.analysis import biomarkers as bm
    from cl_core.demo.worlds import tissue as ts
    from cl_core.modality import ChannelStack, Item, Modality
    from cl_core.models.open import open_checkpoint
    from cl_core.resources import RESOURCES

    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", type=int, default=600)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=4242, help="a world seed the demo model never saw")
    a = ap.parse_args()
    t0 = time.perf_counter()
    samples = ts.make_world(a.seed, a.reference + a.queries)
    ref, query = samples[:a.reference], samples[a.reference:]
    model = open_checkpoint(RESOURCES / "demo" / "tissue")

    def encode(modality: Modality, data: list) -> np.ndarray:
        return np.asarray(model.encode(modality, [Item(f"x{i}", modality, d) for i, d in enumerate(data)]))

    ref_mif = encode(Modality.MULTICHANNEL, [ChannelStack(s.mif, ts.CHANNELS) for s in ref])
    ref_he = encode(Modality.IMAGE, [s.he for s in ref])
    q_he = encode(Modality.IMAGE, [s.he for s in query])
    q_text = encode(Modality.TEXT, [s.text for s in query])
    z = bm.Standardiser.fit(bm.mean_intensity(np.stack([s.mif for s in ref])))
    ref_targets = z(bm.mean_intensity(np.stack([s.mif for s in ref])))
    truth = z(bm.mean_intensity(np.stack([s.mif for s in query])))
    swapped = np.roll(q_text, 1, axis=0)  # each case's text is another case's
    scale = float(model.logit_scale)

    def run(w: float, texts: np.ndarray | None) -> np.ndarray:
        return np.stack([bm.infer(ref_mif, ref_targets, q_he[i], None if texts is None else texts[i], ts.CHANNELS,
                                  scale, w=w).value for i in range(len(query))])

    variants = {"H&E + text (w = 0.8)": run(0.8, q_text), "H&E alone": run(1.0, None),
                "text alone": run(0.0, q_text), "H&E + another case's text (w = 0.8)": run(0.8, swapped),
                "ridge probe on H&E embeddings": bm.linear_probe(ref_he, ref_targets, q_he)}
    out = {"model": model.name, "seed": a.seed, "reference": a.reference, "queries": a.queries, "k": bm.K,
           "softmax_scale": round(scale, 3), "markers": list(ts.CHANNELS),
           "measure": "mean channel intensity of the mIF patch, z-scored per marker across the reference gallery",
           "pearson": {}, "mean_pearson": {}}
    for name, pred in variants.items():
        r = bm.pearson_per_marker(pred, truth)
        out["pearson"][name] = dict(zip(ts.CHANNELS, np.round(r, 4).tolist(), strict=True))
        out["mean_pearson"][name] = round(float(np.nanmean(r)), 4)
    out["gallery_mean_mae"] = round(float(np.abs(truth).mean()), 4)  # predicting z = 0 for every marker
    # text-conditioned retrieval: each query case's H&E (+ text) fused as the search fuses weighted items,
    # its own mIF patch to be found among the query cases' mIF patches
    from cl_core.analysis.metrics import ranks

    q_mif = encode(Modality.MULTICHANNEL, [ChannelStack(s.mif, ts.CHANNELS) for s in query])

    def fused(w: float, texts: np.ndarray | None) -> np.ndarray:
        v = q_he if texts is None else w * q_he + (1 - w) * texts
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    out["he_to_mif_retrieval"] = {}
    for name, vec in (("H&E alone", fused(1.0, None)), ("H&E + its text, weights 1:1", fused(0.5, q_text)),
                      ("H&E + another case's text, weights 1:1", fused(0.5, swapped)),
                      ("H&E + its text, w = 0.8", fused(0.8, q_text)),
                      ("H&E + another case's text, w = 0.8", fused(0.8, swapped))):
        r = ranks(vec, q_mif)
        out["he_to_mif_retrieval"][name] = {"R@1": round(float((r <= 1).mean()), 3),
                                            "R@10": round(float((r <= 10).mean()), 3),
                                            "median_rank": float(np.median(r))}
    # the other target: positive-cell fractions (cells: DAPI peaks; positive above Otsu's split of the reference
    # cells), the query's own stack measured with the reference's thresholds
    from cl_core.analysis import cells

    ref_stacks, query_stacks = [s.mif for s in ref], [s.mif for s in query]
    nuc = cells.nuclear_threshold(ref_stacks[:200], 0)
    ref_frac, thresholds = cells.positive_fractions([cells.cell_values(p, 0, nuc) for p in ref_stacks], 0)
    q_frac, _ = cells.positive_fractions([cells.cell_values(p, 0, nuc) for p in query_stacks], 0, thresholds)
    zf = bm.Standardiser.fit(ref_frac)
    frac_targets, frac_truth = zf(ref_frac), zf(q_frac)
    positive: dict = {"pearson": {}, "mean_pearson": {}}
    for name, w, texts in (("H&E + text (w = 0.8)", 0.8, q_text), ("H&E alone", 1.0, None)):
        pred = np.stack([bm.infer(ref_mif, frac_targets, q_he[i], None if texts is None else texts[i], ts.CHANNELS,
                                  scale, w=w).value for i in range(len(query))])
        r = bm.pearson_per_marker(pred, frac_truth)
        positive["pearson"][name] = dict(zip(ts.CHANNELS, np.round(r, 4).tolist(), strict=True))
        positive["mean_pearson"][name] = round(float(np.nanmean(r)), 4)
    counts = np.array([[s.findings.cellularity, s.findings.cd8_density, s.findings.pdl1_tps,
                        s.findings.ki67_index * s.findings.cellularity] for s in query])
    positive["measure_vs_world_counts"] = {
        name: round(float(np.corrcoef(q_frac[:, c], counts[:, j])[0, 1]), 3)
        for name, c, j in (("panCK+ fraction vs tumour cellularity", 1, 0), ("CD8+ fraction vs CD8 density", 2, 1),
                           ("PD-L1+ fraction vs PD-L1 TPS", 4, 2), ("Ki67+ fraction vs Ki67+ tumour cells", 5, 3))}
    out["positive_cells"] = positive
    out["fused_mae"] = round(float(np.abs(variants["H&E + text (w = 0.8)"] - truth).mean()), 4)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "biomarkers.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
