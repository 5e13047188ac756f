"""`clens info` and `clens embed` as other tools call them: real subprocesses, real files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np

from cl_core.embed.items import embed_paths
from cl_core.models.open import open_checkpoint


def clens(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLENS_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "cl_core", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_info_json(native_dir):
    out = clens("info", native_dir, "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["format"] == "native" and info["embed_dim"] == 16
    assert set(info["modalities"]) == {"image", "text", "audio", "multichannel"}
    assert info["device"] == "cpu" and info["parameters"] > 0
    assert info["preprocessing"]["multichannel"]["channels"] == ["DAPI", "panCK", "CD8"]


def test_info_human_and_hf(hf_clip):
    out = clens("info", hf_clip[0])
    assert out.returncode == 0, out.stderr
    assert "huggingface" in out.stdout and re.search(r"^  embed_dim +: 24$", out.stdout, re.M)
    # every key in one column: the colons line up
    assert len({line.index(" : ") for line in out.stdout.splitlines()[1:]}) == 1


def test_embed_partial_failure(native_dir, media_dir, tmp_path):
    dest = tmp_path / "emb.npy"
    out = clens("embed", native_dir, media_dir / "red.png", media_dir / "truncated.png", media_dir / "tone.wav",
                "--text", "a red circle", "--out", dest, "--quiet")
    assert out.returncode == 1, out.stderr
    assert "truncated.png" in out.stderr and "corrupt" in out.stderr
    vecs = np.load(dest)
    assert vecs.shape == (3, 16) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    manifest = json.loads(dest.with_suffix(".json").read_text())
    assert [r["modality"] for r in manifest["rows"]] == ["image", "audio", "text"]
    assert manifest["failures"][0]["source"].endswith("truncated.png")
    model = open_checkpoint(native_dir)
    expected = embed_paths(model, [media_dir / "red.png", media_dir / "tone.wav"], ["a red circle"]).vectors
    np.testing.assert_allclose(vecs, expected, atol=1e-5)


def test_embed_all_good_exits_zero_and_modality_flag(native_dir, media_dir, tmp_path):
    dest = tmp_path / "stack.npy"
    out = clens("embed", native_dir, media_dir / "stack.npy", media_dir / "mif.ome.tif", "--modality",
                "multichannel", "--out", dest, "--quiet")
    assert out.returncode == 0, out.stderr
    assert np.load(dest).shape == (2, 16)
    # an RGB image read as a channel stack lacks the model's named markers: refused by name, exit 3
    out = clens("embed", native_dir, media_dir / "red.png", "--modality", "multichannel", "--out", dest, "--quiet")
    assert out.returncode == 3 and "lacks channel(s) DAPI, panCK, CD8" in out.stderr


def test_bad_model_and_usage(tmp_path, media_dir):
    out = clens("info", tmp_path / "nothing")
    assert out.returncode == 3 and "no such file" in out.stderr
    out = clens("embed", tmp_path, "--out", tmp_path / "x.npy")
    assert out.returncode == 2
    out = clens("embed", "x", "--modality", "smell", "--out", "y.npy")
    assert out.returncode == 2 and "unknown modality" in out.stderr


def test_embed_a_gallery_folder_reads_its_captions_once(native_dir, tmp_path):
    """A folder with a captions file and a gallery manifest (as the demo writes): the manifest lists the
    folder's files and is skipped with a note, so each caption is embedded once."""
    from media import make_gallery

    folder = make_gallery(tmp_path / "g", n=3)
    (folder / "captions.csv").write_text("id,caption\n" + "".join(f"s{i},caption number {i}\n" for i in range(3)),
                                         encoding="utf-8")
    dest = tmp_path / "e.npy"
    out = clens("embed", native_dir, folder, "--out", dest, "--quiet")
    assert out.returncode == 0, out.stderr
    assert "skipped" in out.stderr and "manifest.csv" in out.stderr and "gallery manifest" in out.stderr
    rows = json.loads(dest.with_suffix(".json").read_text())["rows"]
    texts = [r["text"] for r in rows if r["modality"] == "text"]
    assert sorted(texts) == [f"caption number {i}" for i in range(3)]
    assert sum(r["modality"] == "image" for r in rows) == 3 and len(np.load(dest)) == len(rows)
    out = clens("embed", native_dir, folder / "manifest.csv", "--out", dest, "--quiet")  # named: read as asked
    assert out.returncode in (0, 1) and "skipped" not in out.stderr
