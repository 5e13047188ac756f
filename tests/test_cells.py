"""Positive-cell fractions: cells found as nuclear-stain peaks, a marker positive above Otsu's split of all
reference cells; the nuclear column is the cell count; and `clens tissue infer --target positive`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cl_core.analysis import cells
from cl_core.cli import main


def patch(centres, positive, rng, size=48):
    """[3, size, size]: DAPI nuclei at `centres`, a marker bright on the cells in `positive`, a dim one."""
    yy, xx = np.mgrid[:size, :size]
    stack = rng.normal(50, 3, (3, size, size)).astype(np.float32)
    for i, (y, x) in enumerate(centres):
        blob = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 1.2**2))
        stack[0] += 900 * blob
        stack[1] += (800 if i in positive else 40) * blob
    return stack


def test_cells_are_counted_and_positive_fractions_follow_the_truth():
    rng = np.random.default_rng(0)
    grid = [(y, x) for y in range(6, 44, 8) for x in range(6, 44, 8)]  # 25 well-separated nuclei
    stacks, truth = [], []
    for n_pos in (0, 5, 12, 25):
        stacks.append(patch(grid, set(range(n_pos)), rng))
        truth.append(n_pos / len(grid))
    assert cells.nuclear_channel(["CD8", "Hoechst 33342", "panCK"]) == 1 and cells.nuclear_channel(["CD8"]) is None
    threshold = cells.nuclear_threshold(stacks, 0)
    per = [cells.cell_values(s, 0, threshold) for s in stacks]
    assert all(len(c) == len(grid) for c in per)
    fractions, thresholds = cells.positive_fractions(per, 0)
    np.testing.assert_allclose(fractions[:, 1], truth)
    assert np.all(fractions[:, 0] == len(grid)) and np.isnan(thresholds[0])
    again, _ = cells.positive_fractions(per[1:2], 0, thresholds)  # a query patch under the reference's split
    assert again[0, 1] == pytest.approx(truth[1])
    assert cells.cell_values(np.full((3, 16, 16), 50.0, np.float32), 0, threshold).shape == (0, 3)  # no cells


def test_clens_tissue_infer_reports_positive_fractions(capsys, native_dir, tmp_path):
    rng = np.random.default_rng(1)
    ref = tmp_path / "ref"
    ref.mkdir()
    grid = [(y, x) for y in range(6, 44, 8) for x in range(6, 44, 8)]
    for i in range(8):
        stack = patch(grid, set(range(3 * i)), rng)
        np.save(ref / f"p{i}.npy", np.stack([stack[0], stack[1], stack[2]]))
        (ref / f"p{i}.npy.channels.json").write_text(json.dumps(["DAPI", "panCK", "CD8"]))
    he = tmp_path / "he.png"
    Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(he)
    assert main(["tissue", "infer", str(native_dir), "--he", str(he), "--reference", str(ref), "-k", "3",
                 "--target", "positive", "--no-cache", "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"] == "positive" and "positive" in out["measure"]
    assert out["markers"]["DAPI"]["value"] == pytest.approx(25.0)  # the cell count
    assert 0.0 <= out["markers"]["panCK"]["value"] <= 1.0
    picked = [int(n["source"][-5]) for n in out["neighbours"]]
    weights = [n["weight"] for n in out["neighbours"]]
    expected = sum(w * (3 * p / 25) for w, p in zip(weights, picked, strict=True))
    assert out["markers"]["panCK"]["value"] == pytest.approx(expected, abs=2e-3)
    from cl_core.actions.tissue import reference_targets
    from cl_core.errors import ClensError
    from cl_core.task import TaskState

    for i in range(8):  # no nuclear stain among the channels: no cells to count
        (ref / f"p{i}.npy.channels.json").write_text(json.dumps(["Vimentin", "panCK", "CD8"]))
    with pytest.raises(ClensError, match="need a nuclear stain"):
        reference_targets([str(p) for p in sorted(ref.glob("p*.npy"))], TaskState(), "positive")
