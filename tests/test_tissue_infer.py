"""`clens tissue infer`: an H&E patch's marker profile from a reference gallery of mIF stacks (channels aligned
by name), with intervals and the neighbours' files; a bad weight is one clear message, and a stack missing a
marker is left out and named while the rest go on."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from cl_core import actions
from cl_core.cli import main


def reference(folder, n: int = 12, names=("DAPI", "panCK", "CD8"), seed: int = 0):
    """n mIF stacks whose panCK brightness grows with i, their names in a sidecar (one order reversed)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        stack = rng.random((len(names), 24, 24)).astype(np.float32)
        stack[names.index("panCK")] += i
        order = list(names) if i % 2 else list(reversed(names))
        np.save(folder / f"p{i:02d}.npy", np.stack([stack[names.index(c)] for c in order]))
        (folder / f"p{i:02d}.npy.channels.json").write_text(json.dumps(order))
    return folder


def test_the_profile_names_each_marker_and_its_neighbours(capsys, native_dir, tmp_path):
    ref = reference(tmp_path / "ref")
    he = tmp_path / "he.png"
    Image.fromarray((np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)).save(he)
    model = actions.open_model(native_dir).model
    got = actions.infer_markers(model, he, ref, "a stage II breast carcinoma", k=3)
    markers = got.inferred.markers
    assert sorted(markers) == ["CD8", "DAPI", "panCK"]  # in the first stack's order
    assert got.reference_count == 12 and len(got.neighbour_sources) == 3
    # each target is the file's channel mean, found by name whatever order the file keeps, z-scored over all
    raw = []
    for i in range(12):
        stack = np.load(ref / f"p{i:02d}.npy")
        order = json.loads((ref / f"p{i:02d}.npy.channels.json").read_text())
        raw.append([stack[order.index(m)].mean() for m in markers])
    raw = np.asarray(raw)
    z = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    picked = [int(src[-6:-4]) for src in got.neighbour_sources]
    np.testing.assert_allclose(got.inferred.value, got.inferred.weights @ z[picked], atol=1e-4)
    assert main(["tissue", "infer", str(native_dir), "--he", str(he), "--reference", str(ref), "-k", "3",
                 "--no-cache", "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["markers"]) == {"DAPI", "panCK", "CD8"} and out["with_text"] is False and out["w_he"] == 1.0
    assert all(m["low"] <= m["z"] + 1e-9 <= m["high"] + 2e-9 for m in out["markers"].values())
    assert [n["source"] for n in out["neighbours"]] and "z-scored" in out["measure"]


def test_a_bad_weight_is_one_message_and_a_stack_missing_a_marker_is_left_out_by_name(capsys, native_dir, tmp_path):
    ref = reference(tmp_path / "ref", n=4)
    he = tmp_path / "he.png"
    Image.new("RGB", (32, 32), (200, 120, 180)).save(he)
    assert main(["tissue", "infer", str(native_dir), "--he", str(he), "--reference", str(ref), "-w", "1.5",
                 "--text", "x", "--no-cache", "--quiet"]) != 0
    assert "between 0 and 1" in capsys.readouterr().err
    first = np.load(ref / "p00.npy")  # the first stack carries one more marker than the others
    np.save(ref / "p00.npy", np.concatenate([first, first[:1]]))
    order = json.loads((ref / "p00.npy.channels.json").read_text())
    (ref / "p00.npy.channels.json").write_text(json.dumps([*order, "Ki67"]))
    model = actions.open_model(native_dir).model
    got = actions.infer_markers(model, he, ref, k=2)  # the stacks without Ki67 are left out, each named
    assert got.reference_count == 1 and len(got.skipped) == 3
    assert any("p01.npy: no channel Ki67" in line for line in got.skipped)
    (ref / "p00.npy").write_bytes(b"not a stack")  # a broken file: the gallery reports it, the rest go on
    again = actions.infer_markers(model, he, ref, k=2)
    assert again.reference_count == 3 and not again.skipped
    assert all("p00" not in s for s in again.neighbour_sources)
