"""Explanations checked against ground truth on the shapes & sounds world (held-out scenes, never trained on).

- Images: two or three objects of distinct colour and shape on a 128-px canvas (the model's input is 64);
  the query "a {colour} {shape}" names one of them; a hit when the map's peak falls inside that object
  (its drawn radius plus 2 px): the pointing game.
- Sounds: the same objects' sounds one after another, 1 s each; a hit when the curve peaks inside the
  named object's second.
- Captions: a single-object sample's image as the query and its caption as the text; a hit when the word
  whose removal costs the most is a colour or shape word.

- Time for one image map: on the demo model (a 128-px scene, its input 64 px), and on a ViT-B/32-sized CLIP
  (transformers' default CLIPConfig, randomly initialised: the size and cost of openai/clip-vit-base-patch32,
  whose weights cannot be downloaded here) for a 224-px picture; median of 3 maps, this machine's CPU.

    .venv/bin/python benchmarks/bench_explain.py [--scenes 200] [--no-vit]
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


def map_seconds(model, picture, repeats: int = 3) -> tuple[float, int]:  # noqa: ANN001
    """Median seconds for one image map of `picture` (sliding windows, then occlusion), and the embeddings made."""
    q = model.encode(Modality.TEXT, [Item("query", Modality.TEXT, "a red circle")])[0]
    counted = [0]
    encode = model.encode

    def counting(modality, items, **kw):  # noqa: ANN001, ANN202
        counted[0] += len(items)
        return encode(modality, items, **kw)

    model.encode = counting
    times = []
    try:
        for _ in range(repeats):
            counted[0] = 0
            t = time.perf_counter()
            explain_image(model, q, picture)
            times.append(time.perf_counter() - t)
    finally:
        del model.encode
    return float(np.median(times)), counted[0]


def vit_b32(folder: Path):  # noqa: ANN201
    """A randomly initialised CLIP of ViT-B/32's size (transformers' CLIPConfig defaults), saved and opened
    the way a user's Hugging Face checkpoint is."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    from cl_core.models.clip_tokenizer import get_clip_tokenizer

    torch.manual_seed(0)
    CLIPModel(CLIPConfig()).eval().save_pretrained(str(folder), safe_serialization=True)
    vocab, merges = get_clip_tokenizer().hf_vocab_and_merges()
    CLIPTokenizer(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges]).save_pretrained(str(folder))
    CLIPImageProcessor().save_pretrained(str(folder))
    return open_checkpoint(folder)


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=200)
    ap.add_argument("--no-vit", action="store_true", help="skip the ViT-B/32-sized timing (it writes ~600 MB)")
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
    seconds, made = map_seconds(model, ss.make_scene(0, objects=3).image)
    out["image_map_timing"] = [{"model": f"demo {model.name} (input 64 px)", "picture_px": 128,
                                "seconds": round(seconds, 3), "embeddings": made}]
    if not a.no_vit:
        import tempfile

        from PIL import Image

        with tempfile.TemporaryDirectory(prefix="bench-vit-") as tmp:
            vit = vit_b32(Path(tmp))
            picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (224, 224, 3), np.uint8), "RGB")
            seconds, made = map_seconds(vit, picture)
            out["image_map_timing"].append({"model": "ViT-B/32-sized CLIP (random weights, input 224 px)",
                                            "picture_px": 224, "seconds": round(seconds, 2), "embeddings": made,
                                            "device": str(vit.device)})
    import os

    out["machine"] = f"{os.cpu_count()} CPU cores, no GPU" if not _cuda() else "CUDA GPU"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "explain.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
