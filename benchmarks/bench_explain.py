"""Explanations checked against ground truth on the shapes & sounds world (held-out scenes, never trained on).

- Images: two or three objects of distinct colour and shape on a 128-px canvas (the model's input is 64);
  the query "a {colour} {shape}" names one of them; a hit when the map's peak falls inside that object
  (its drawn radius plus 2 px): the pointing game.
- Sounds: the same objects' sounds one after another, 1 s each; a hit when the curve peaks inside the
  named object's second.
- Captions: a single-object sample's image as the query and its caption as the text; a hit when the word
  whose removal costs the most is a colour or shape word.

    .venv/bin/python benchmarks/bench_explain.py [--scenes 200]
"""

from __future__ import annotations

import argparse
import json
import math
import string
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cl_core.analysis.explain import explain_audio, explain_image, explain_text  # noqa: E402
from cl_core.demo.galleries import DEMO_MODEL  # noqa: E402
from cl_core.demo.worlds import shapes_sounds as ss  # noqa: E402
from cl_core.modality import AudioClip, Item, Modality  # noqa: E402
from cl_core.models.open import open_checkpoint  # noqa: E402

RESULTS = Path(__file__).parent / "results"
ATTRIBUTE_WORDS = {w for words in (*ss.COLOUR_WORDS.values(), *ss.SHAPE_WORDS.values()) for p in words
                   for w in p.split()}


def scene_hits(model, n: int) -> tuple[list[bool], list[bool]]:  # noqa: ANN001
    points, moments = [], []
    for i in range(n):
        scene = ss.make_scene(i, objects=2 + i % 2)
        k = i % len(scene.objects)
        o = scene.objects[k]
        q = model.encode(Modality.TEXT, [Item("query", Modality.TEXT, f"a {o.colour} {o.shape}")])[0]
        peak = explain_image(model, q, scene.image).peak
        points.append(math.dist(peak, scene.centres[k]) <= scene.radii[k])
        a, b = scene.segments[k]
        moments.append(a <= explain_audio(model, q, AudioClip(scene.audio, ss.RATE)).peak_s < b)
    return points, moments


def caption_hits(model, n: int) -> list[bool]:  # noqa: ANN001
    out = []
    for i in range(n):
        sample = ss.make_sample(ss.SCENE_SEED + 1, i, compositional_fraction=0.0)
        q = model.encode(Modality.IMAGE, [Item("query", Modality.IMAGE, sample.image)])[0]
        top = explain_text(model, q, sample.caption).top().strip(string.punctuation).lower()
        out.append(top in ATTRIBUTE_WORDS)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=200)
    a = ap.parse_args()
    model = open_checkpoint(DEMO_MODEL)
    t = time.perf_counter()
    points, moments = scene_hits(model, a.scenes)
    scenes_s = time.perf_counter() - t
    words = caption_hits(model, a.scenes)
    out = {"model": model.name, "scenes": a.scenes, "pointing_game": round(float(np.mean(points)), 3),
           "audio_peak_in_segment": round(float(np.mean(moments)), 3),
           "caption_attribute_word_top": round(float(np.mean(words)), 3),
           "seconds_per_scene": round(scenes_s / a.scenes, 2)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "explain.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
