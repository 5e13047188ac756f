"""Relevance on the demo worlds, where the truth is known: what the default threshold returns.

Shapes & sounds (300 held-out single shapes, each an image, a caption and a sound; label = colour and shape):
for each of the 20 labels, the query "a {label}" searched in every modality with the default threshold and
no cap on k; precision and recall of what is returned, relevant = same label. Also at other thresholds,
the share of gallery captions that are their own first hit, and what nonsense queries return.
Tissue (300 held-out cases: H&E, mIF, report; the label is the organ, too coarse to count as a match, so
relevance = the same case): each report searched for its own H&E patch and mIF stack.

    .venv/bin/python benchmarks/bench_relevance.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cl_core import actions  # noqa: E402
from cl_core.choices import DEFAULT_MIN_RELEVANCE  # noqa: E402
from cl_core.demo.galleries import DEMOS, demo_manifest  # noqa: E402
from cl_core.modality import Modality  # noqa: E402

RESULTS = Path(__file__).parent / "results"
THRESHOLDS = (0.2, 0.3, DEFAULT_MIN_RELEVANCE, 0.5, 0.7)
NONSENSE = ("zebra quantum banana", "the stock market fell sharply", "a photo", "asdf qwerty")


def open_demo(name: str, root: Path):  # noqa: ANN201
    model = actions.open_model(DEMOS[name].model).model
    manifest = demo_manifest(name, folder=root / f"{name}-gallery")
    built = actions.build_index(model, manifest, root / f"{name}-index", cache=actions.EmbeddingCache(root / "cache"))
    return model, built.index


def shapes(root: Path) -> dict:
    model, index = open_demo("shapes_sounds", root)
    labels = sorted({r.label for r in index.rows if r.label})
    hits = {lab: actions.search(model, index, actions.SearchRequest(texts=(f"a {lab}",), k=len(index.rows))).hits
            for lab in labels}
    totals = {lab: sum(r.label == lab for r in index.rows) for lab in labels}
    sweep = {}
    for t in THRESHOLDS:
        p, r = [], []
        for lab in labels:
            kept = [h for h in hits[lab] if h.relevance >= t]
            right = sum(h.label == lab for h in kept)
            p.append(right / len(kept) if kept else 1.0)
            r.append(right / totals[lab])
        sweep[f"{t:g}"] = {"precision": round(float(np.mean(p)), 3), "recall": round(float(np.mean(r)), 3)}
    captions = [r for r in index.rows if r.text]
    first = sum(actions.search(model, index, actions.SearchRequest(texts=(c.text,), k=1)).hits[0].text == c.text
                for c in captions)
    nonsense = {}
    for text in NONSENSE:
        got = actions.search(model, index, actions.SearchRequest(texts=(text,), k=len(index.rows),
                                                                 min_relevance=DEFAULT_MIN_RELEVANCE))
        nonsense[text] = len(got.hits)
    return {"labels": len(labels), "items": len(index.rows), "threshold_sweep": sweep,
            "caption_first": f"{first}/{len(captions)}", "nonsense_hits_at_default": nonsense}


def tissue(root: Path) -> dict:
    model, index = open_demo("tissue", root)
    out = {}
    reports = [r for r in index.rows if r.text]
    for target in (Modality.IMAGE, Modality.MULTICHANNEL):
        ranks, probs = [], []
        for r in reports:
            got = actions.search(model, index, actions.SearchRequest(texts=(r.text or "",), target=target, k=10)).hits
            ids = [h.sample_id for h in got]
            ranks.append(ids.index(r.sample_id) + 1 if r.sample_id in ids else 11)
            probs.append(next((h.relevance for h in got if h.sample_id == r.sample_id), 0.0))
        kept = [p >= DEFAULT_MIN_RELEVANCE for p in probs]
        out[f"report->{target.value}"] = {"R@1": round(float(np.mean(np.array(ranks) == 1)), 3),
                                    "own case passes the default threshold": round(float(np.mean(kept)), 3)}
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-relevance-") as tmp:
        report = {"default_threshold": DEFAULT_MIN_RELEVANCE, "shapes": shapes(Path(tmp)), "tissue": tissue(Path(tmp))}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "relevance.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
