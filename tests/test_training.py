"""The trainer: deterministic for a seed, resumable to the same weights, any objective, a model card."""

from __future__ import annotations

import copy
import json
import tomllib

import numpy as np
import pytest
from safetensors.torch import load_file

from cl_core.checkpoint import open_checkpoint
from cl_core.errors import Cancelled, ClensError
from cl_core.metrics import ranks, retrieval_report
from cl_core.modality import Modality
from cl_core.task import TaskState
from cl_core.training import load_recipe, train

TINY = """
[model]
name = "tiny"
embed_dim = 16
[model.towers.image]
arch = "conv"
widths = [8]
preprocess = { size = 32, resize_mode = "squash" }
[model.towers.audio]
arch = "audio_conv"
widths = [8]
preprocess = { sample_rate = 8000, window_seconds = 1.0, n_fft = 256, hop = 160, n_mels = 16 }
[model.towers.text]
arch = "clip_text"
context_length = 24
width = 32
heads = 2
layers = 1
[data]
world = "shapes_sounds"
train = 64
heldout = 24
missing_fraction = 0.2
[train]
objective = "info_nce"
epochs = 2
batch_size = 16
save_every = 1
seed = 3
"""


def recipe(**train_overrides):
    r = tomllib.loads(TINY)
    r["train"].update(train_overrides)
    return r


def weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_same_seed_same_weights_and_card(tmp_path):
    card = train(recipe(), tmp_path / "a")
    train(recipe(), tmp_path / "b")
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
    assert card["training"]["steps"] == 8
    single = card["heldout_metrics"]["single"]
    assert set(single) == {f"{a}->{b}" for a in ("image", "audio", "text") for b in ("image", "audio", "text") if a != b}
    md = (tmp_path / "a" / "MODEL_CARD.md").read_text()
    assert "| image->text |" in md and "shapes_sounds" in md
    assert json.loads((tmp_path / "a" / "model_card.json").read_text())["recipe"]["train"]["seed"] == 3
    model = open_checkpoint(tmp_path / "a")
    assert set(model.modalities) == {Modality.IMAGE, Modality.AUDIO, Modality.TEXT}


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    train(recipe(), tmp_path / "full")
    state = TaskState()
    state._on_progress = lambda p: p.done >= 3 and state.cancel()
    with pytest.raises(Cancelled):
        train(recipe(), tmp_path / "resumed", state)
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    messages = []
    train(recipe(), tmp_path / "resumed", TaskState(on_message=messages.append))
    assert messages == ["resuming from step 3"]
    full, resumed = weights(tmp_path / "full"), weights(tmp_path / "resumed")
    for k in full:
        np.testing.assert_allclose(full[k].numpy(), resumed[k].numpy(), atol=1e-6, err_msg=k)


@pytest.mark.parametrize("objective", ["siglip", "dcl", "mv_infonce", "mv_dhel", "symile", "gram"])
def test_every_objective_trains_with_missing_modalities(tmp_path, objective):
    r = recipe(objective=objective, epochs=1)
    card = train(r, tmp_path / objective)
    assert np.isfinite(card["training"]["final_loss"])


def test_recipe_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nembed_dim = 4\n")
    with pytest.raises(ClensError, match=r"\[data\]"):
        load_recipe(bad)
    r = copy.deepcopy(TINY).replace('objective = "info_nce"', 'objective = "triplet"')
    bad.write_text(r)
    with pytest.raises(ClensError, match="unknown objective"):
        load_recipe(bad)


def test_ranks_and_recall():
    q = np.eye(4, dtype=np.float32)
    g = np.eye(4, dtype=np.float32)[[0, 1, 3, 2]]  # rows 2 and 3 swapped: their partners rank second
    assert ranks(q, g).tolist() == [1, 1, 2, 2]
    rep = retrieval_report(q, g, ks=(1, 5))
    assert rep["R@1"] == 0.5 and rep["R@5"] == 1.0 and rep["median_rank"] == 1.5 and rep["n"] == 4


def test_tissue_world_trains_a_three_modality_model(tmp_path):
    r = recipe(epochs=1)
    r["data"] = {"world": "tissue", "train": 48, "heldout": 16}
    r["model"]["towers"] = {
        "image": {"arch": "conv", "widths": [8], "preprocess": {"size": 32, "resize_mode": "squash"}},
        "multichannel": {"arch": "conv", "in_channels": 6, "widths": [8],
                         "preprocess": {"size": 32, "channels": ["DAPI", "panCK", "CD8", "CD68", "PD-L1", "Ki67"]}},
        "text": {"arch": "clip_text", "context_length": 40, "width": 32, "heads": 2, "layers": 1},
    }
    card = train(r, tmp_path / "tissue")
    assert set(card["heldout_metrics"]["all"]) == {
        "image->multichannel", "image->text", "multichannel->image", "multichannel->text", "text->image",
        "text->multichannel"}
    model = open_checkpoint(tmp_path / "tissue")
    assert model.info()["preprocessing"]["multichannel"]["channels"][1] == "panCK"


def test_comparison_table(tmp_path):
    from cl_core.training import comparison_markdown

    cards = {o: {"heldout_metrics": {"all": {"a->b": {"R@10": v}, "b->a": {"R@10": v / 2}}}}
             for o, v in (("info_nce", 0.8), ("gram", 0.6))}
    table = comparison_markdown(cards)
    assert "| info_nce | 0.800 | 0.400 | 0.600 |" in table and "| gram | 0.600 | 0.300 | 0.450 |" in table
