"""Text output of the headless verbs: aligned columns, three decimals, one notation for modality pairs
(`a->b` for a direction, `a<->b` for a symmetric measure)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cl_core.errors import Failure

if TYPE_CHECKING:
    from cl_core.search.query import Hit


def _rows(pairs: Sequence[tuple[str, str]], indent: str = "  ") -> None:
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        print(f"{indent}{key:<{width}} : {value}")


def print_info(info: dict[str, Any]) -> None:
    print(f"{info['name']}  ({info['format']})")
    scale = str(info["logit_scale"]) + (f", bias {info['logit_bias']}" if info["logit_bias"] is not None else "")
    rows = [("modalities", ", ".join(info["modalities"])), ("embed_dim", str(info["embed_dim"])),
            ("parameters", f"{info['parameters']:,}"), ("logit scale", scale), ("device", str(info["device"]))]
    if info.get("fingerprint"):
        rows.append(("fingerprint", info["fingerprint"]))
    rows += [(f"preprocess {mod}", json.dumps(pre, default=str)) for mod, pre in info["preprocessing"].items()]
    _rows(rows)


def print_failures(failures: Sequence[Failure]) -> None:
    for f in failures:
        what = {"quarantine": "quarantined", "skipped": "skipped", "note": "note"}.get(f.stage, "failed")
        print(f"{what}: {f.source}: {f.reason}", file=sys.stderr)


def print_hits(hits: Sequence[Hit], failures: Sequence[Failure] = (), closest: Sequence[Hit] = ()) -> None:
    if failures:
        return
    if not hits:
        print("nothing relevant (no hit passes the relevance threshold; --all shows every hit)")
        if closest:
            print("closest, none likely relevant:")
            print_hits(closest)
        return
    width = max(len("modality"), *(len(h.modality) for h in hits))
    sample = max(len("sample"), *(len(h.sample_id) for h in hits))
    print(f"{'#':>3}  {'relev':>5}  {'score':>6}  {'modality':<{width}}  {'sample':<{sample}}  item")
    for h in hits:
        what = h.text if h.text else h.source
        print(f"{h.rank:>3}  {h.relevance:5.3f}  {h.score:+.3f}  {h.modality:<{width}}  {h.sample_id:<{sample}}  {what}")


def print_evaluation(retrieval: dict[str, dict[str, float]], zero_shot: dict[str, Any]) -> None:
    if not retrieval:
        print("no paired samples (rows sharing an id across modalities): retrieval not evaluated")
    width = max((len(p) for p in retrieval), default=0)
    for pair, r in retrieval.items():
        print(f"{pair:<{width}}  R@1 {r['R@1']:.3f}  R@5 {r['R@5']:.3f}  R@10 {r['R@10']:.3f}  "
              f"median rank {r['median_rank']:g}  (n={r['n']})")
    for modality, z in zero_shot.items():
        labels = z["labels"]
        print(f"zero-shot {modality}: accuracy {z['accuracy']:.3f} over {len(labels)} labels (n={z['n']})")
        name_w = max(len(label) for label in labels)
        idx_w = len(str(len(labels) - 1))
        cell = max(3, idx_w, *(len(str(v)) for row in z["confusion"] for v in row))
        print(" " * (name_w + idx_w + 2) + " ".join(f"{i:>{cell}}" for i in range(len(labels))))
        for i, (label, row) in enumerate(zip(labels, z["confusion"], strict=True)):
            print(f"{label:>{name_w}} {i:>{idx_w}} " + " ".join(f"{v:>{cell}}" for v in row))


def _f(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def print_diagnosis(report: dict[str, Any]) -> None:
    if not report:
        print("nothing was embedded, so nothing was measured")
        return
    print("items: " + ", ".join(f"{m} {n}" for m, n in report["counts"].items()))
    names = [*report["per_modality"], *(p.replace("|", "<->") for p in report["pairs"])]
    width = max((len(n) for n in names), default=0)
    for m, d in report["per_modality"].items():
        print(f"{m:<{width}}  effective rank {_f(d['effective_rank'])} centred, "
              f"{_f(d.get('effective_rank_as_given'))} as given  uniformity {_f(d['uniformity'])}")
        if "hubness_within" in d:
            _print_hubness(f"hubness within {m}", d["hubness_within"])
    for m, d in report["modality_bias"].items():
        print(f"{m:<{width}}  top-1 neighbour of its own modality {_f(d['own_modality_top1'])} "
              f"(its share of the pool {_f(d['own_share_of_pool'])})")
    for pair, d in report["pairs"].items():
        line = (f"{pair.replace('|', '<->'):<{width}}  gap {_f(d['centroid_distance'])}  "
                f"probe accuracy {_f(d['linear_probe_accuracy'])}")
        if "alignment" in d:
            line += (f"  alignment {_f(d['alignment'])}  neighbour agreement intra "
                     f"{_f(d['neighbour_agreement']['intra'])} inter {_f(d['neighbour_agreement']['inter'])}")
        print(line)
        for key, h in d.items():
            if key.startswith("hubness"):
                _print_hubness(key, h)
    print("(what each figure is: clens diagnose --json, under \"definitions\")")


def _print_hubness(name: str, h: dict[str, Any]) -> None:
    print(f"    {name}: skew {_f(h['skewness'])}, never retrieved {_f(h['never_retrieved'])}, "
          f"max N_{h['k']} {h['max_occurrence']}")


def print_explained(got: Any) -> None:
    """A map's gist in words: the peak, the moment, or the words by importance."""
    if got.image is not None:
        h, w = got.image.heat.shape
        x, y = got.image.peak
        print(f"{got.target}: best match at x={x}, y={y} of {w}x{h} ({got.image.windows} windows of "
              f"{', '.join(map(str, got.image.window_sizes))} px, then occlusion in the best)")
    elif got.curve is not None:
        how = "windows" if got.curve.method == "windows" else "parts silenced in turn,"
        print(f"{got.target}: best match at {got.curve.peak_s:.2f} s ({how} of {got.curve.window_s:.2f} s)")
    elif got.words is not None:
        order = sorted(zip(got.words.words, got.words.importance, strict=True), key=lambda t: -t[1])
        width = max(len(w) for w, _ in order) if order else 0
        print(f"score {got.words.score:+.4f}; words by how much the score drops without them:")
        for word, imp in order:
            print(f"  {word:<{width}}  {imp:+.4f}")


def print_comparison(got: Any) -> None:
    """The figures of both models side by side, then per query the overlap and both top lists."""
    a, b = got.names
    rows = [(name, _f(x), _f(y)) for name, x, y, _ in got.figures]
    width = max((len(r[0]) for r in rows), default=0)
    print(f"{'':<{width}}  {'first':>8}  {'second':>8}    first: {a}; second: {b}")
    for name, x, y in rows:
        print(f"{name:<{width}}  {x:>8}  {y:>8}")
    for s in got.searches:
        o = s["overlap"]
        share = "n/a" if o["overlap"] is None else f"{o['overlap']:.2f}"
        print(f"\n{s['query']!r}: {o['shared']} of the first {o['k']} shared (overlap@{o['k']} {share})")
        for rank, hit in enumerate(s["first"][:o["k"]], 1):
            key = (hit["modality"], hit["source"], hit["text"] or "")
            other = next((h for h in s["second"] if (h["modality"], h["source"], h["text"] or "") == key), None)
            where = f"second's #{other['rank']}" if other is not None else "not in the second's list"
            print(f"  {rank:>3}. {hit['modality']:<12} {(hit['text'] or hit['source'])[:60]:<60}  {where}")


def print_markers(got: Any) -> None:
    """Each marker's inferred z with its interval, then the neighbours it came from."""
    inf = got.inferred
    how = f"H&E (w = {got.w}) + text" if got.with_text else "H&E alone"
    what = "mean intensity" if got.target == "mean" else "positive-cell fraction"
    print(f"inferred from {how}, {len(inf.neighbours)} of {got.reference_count} reference mIF patches "
          f"(z: {what} against the reference gallery's)")
    width = max(len(m) for m in inf.markers) if inf.markers else 0
    raw = got.raw if got.raw is not None else [None] * len(inf.markers)
    for m, v, lo, hi, r in zip(inf.markers, inf.value, inf.low, inf.high, raw, strict=True):
        unit = "" if r is None else (f"  (mean intensity {r:.1f})" if got.target == "mean" else
                                     f"  ({r:.0f} cells)" if m == got.nuclear else f"  ({100 * r:.0f}% of cells positive)")
        print(f"  {m:<{width}}  {v:+.2f}  [{lo:+.2f}, {hi:+.2f}]{unit}")
    print("neighbours:")
    for source, s, w in zip(got.neighbour_sources, inf.scores, inf.weights, strict=True):
        print(f"  {s:.4f}  weight {w:.2f}  {source}")
    print("(what the model's space says about these markers, not a measurement)")


def print_shift(got: Any) -> None:
    """Each marker's mean shift with its interval and corrected p, then the caveat."""
    print(f"{len(got.patches)} H&E patch(es); profiles from the top {got.k} reference mIF patches weighted by "
          f"score (H&E {got.w:g} / text {1 - got.w:g}); shift = edited - original, in z")
    width = max(len(m) for m in got.markers) if got.markers else 0
    for c, m in enumerate(got.markers):
        p = got.p_holm[c]
        test = f"p(Holm) {p:.3g}" if p == p else "no test (one patch)"
        mark = " *" if got.significant[c] else ""
        print(f"  {m:<{width}}  {got.mean[c]:+.3f}  [{got.low[c]:+.3f}, {got.high[c]:+.3f}]  {test}{mark}")
    print(f"interval: bootstrap over the {got.interval_over}; test: paired Wilcoxon across patches, "
          "Holm-corrected across markers (* a shift: p below 0.05 and the interval excludes 0)")
    print(got.to_dict()["caveat"])
