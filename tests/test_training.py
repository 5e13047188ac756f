"""The trainer: deterministic for a seed, resumable to the same weights, any objective, a model card."""

from __future__ import annotations

import copy
import json
import tomllib

import numpy as np
import pytest
from safetensors.torch import load_file

from cl_core.analysis.metrics import ranks, retrieval_report
from cl_core.errors import Cancelled, ClensError
from cl_core.modality import Modality
from cl_core.models.open import open_checkpoint
from cl_core.task import TaskState
from cl_core.train.trainer import load_recipe, train

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
    assert open_checkpoint(tmp_path / objective).objective == objective  # recorded: the app fuses queries by it


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
    from cl_core.train.trainer import comparison_markdown

    cards = {o: {"heldout_metrics": {"all": {"a->b": {"R@10": v}, "b->a": {"R@10": v / 2}}}}
             for o, v in (("info_nce", 0.8), ("gram", 0.6))}
    table = comparison_markdown(cards)
    assert "| info_nce | 0.800 | 0.400 | 0.600 |" in table and "| gram | 0.600 | 0.300 | 0.450 |" in table
    for o, c in cards.items():
        c["heldout_objective_score"] = {"all": {"a->b": {"R@10": 0.1}, "a+b->c": {"R@10": 0.9 if o == "gram" else 0.5}}}
    joint = comparison_markdown(cards, section="heldout_objective_score", joint_only=True)
    assert "| objective | a+b->c | mean |" in joint and "| gram | 0.900 | 0.900 |" in joint


def test_gram_card_scores_as_gram_and_anchors_on_text(tmp_path):
    from cl_core.train.trainer import objective_options

    card = train(recipe(objective="gram", epochs=1), tmp_path / "g")
    native = card["heldout_objective_score"]["single"]
    assert {"image+audio->text", "image->text", "text->audio"} <= set(native)
    assert "scored as `gram` scores" in (tmp_path / "g" / "MODEL_CARD.md").read_text()
    assert objective_options(recipe(objective="gram"), ["image", "audio", "text"]) == {"anchor": 2}
    assert objective_options(recipe(objective="gram", anchor="audio"), ["image", "audio", "text"]) == {"anchor": 1}
    with pytest.raises(ClensError, match="anchor 'video'"):
        objective_options(recipe(objective="gram", anchor="video"), ["image", "audio", "text"])


def test_pair_weights_weigh_the_pairwise_mean():
    import torch

    from cl_core.train.trainer import batch_loss, pair_weights

    g = torch.Generator().manual_seed(0)
    embs = {m: torch.randn(6, 4, generator=g) for m in (Modality.IMAGE, Modality.AUDIO, Modality.TEXT)}
    present = {m: torch.ones(6, dtype=torch.bool) for m in embs}
    scale = torch.tensor(5.0)
    w = pair_weights(recipe(pair_weights={"image-audio": 0.0, "audio-text": 3.0}))
    got = batch_loss("info_nce", embs, present, scale, {}, w)
    from cl_core.objectives import info_nce

    it = info_nce([embs[Modality.IMAGE], embs[Modality.TEXT]], scale)
    at = info_nce([embs[Modality.AUDIO], embs[Modality.TEXT]], scale)
    assert float(got) == pytest.approx(float((it + 3 * at) / 4), abs=1e-6)
    assert float(batch_loss("info_nce", embs, present, scale, {}, {})) != pytest.approx(float(got))


@pytest.mark.parametrize("weights, match", [({"image-video": 1.0}, "two of the model's towers"),
                                            ({"image-text": -1.0}, "finite number >= 0")])
def test_pair_weight_errors(tmp_path, weights, match):
    from cl_core.train.trainer import pair_weights

    with pytest.raises(ClensError, match=match):
        pair_weights(recipe(pair_weights=weights))
    with pytest.raises(ClensError, match="pairwise objectives"):
        pair_weights(recipe(objective="symile", pair_weights={"image-text": 0.5}))


def test_dihedral_gives_the_eight_symmetries_of_the_square():
    import torch

    from cl_core.train.trainer import dihedral

    x = torch.arange(2 * 9, dtype=torch.float32).view(1, 2, 3, 3).expand(8, 2, 3, 3)
    out = dihedral(x, torch.arange(8))
    assert torch.equal(out[0], x[0])
    assert len({tuple(o.flatten().tolist()) for o in out}) == 8  # all distinct
    assert all(torch.equal(o.flatten().sort().values, x[0].flatten().sort().values) for o in out)  # pixels moved
    assert torch.equal(out[1], torch.rot90(x[0], 1, dims=(-2, -1)))
    assert torch.equal(out[4], x[0].flip(-1))


def test_augmented_training_is_deterministic(tmp_path):
    import torch

    card = train(recipe(augment="dihedral", epochs=1), tmp_path / "a")
    train(recipe(augment="dihedral", epochs=1), tmp_path / "b")
    aug = weights(tmp_path / "a")
    assert all((aug[k] == weights(tmp_path / "b")[k]).all() for k in aug)
    train(recipe(epochs=1), tmp_path / "plain")
    plain = weights(tmp_path / "plain")
    assert any(not torch.equal(aug[k], plain[k]) for k in plain if k.startswith("towers.image"))
    assert np.isfinite(card["training"]["final_loss"])
    with pytest.raises(ClensError, match="augment must be one of"):
        bad = tmp_path / "bad.toml"
        bad.write_text(TINY.replace('objective = "info_nce"', 'objective = "info_nce"\naugment = "mixup"'))
        load_recipe(bad)


def test_objective_retrieval_scores_as_each_objective():
    from cl_core.train.trainer import objective_retrieval

    rng = np.random.default_rng(0)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    a = unit(rng.normal(size=(40, 8))).astype(np.float32)
    vecs = {"image": a, "multichannel": -a, "text": unit(a + 0.3 * rng.normal(size=a.shape)).astype(np.float32)}
    gram = objective_retrieval("gram", vecs)
    cosine = objective_retrieval("info_nce", vecs | {"multichannel": vecs["text"][::-1].copy()})
    assert gram["image->multichannel"]["R@1"] == 1.0  # anti-parallel partners: volume 0, as GRAM trains
    assert "image->multichannel" not in cosine and retrieval_report(a, -a)["R@1"] == 0.0
    assert set(cosine) == {"multichannel+text->image", "image+text->multichannel", "image+multichannel->text"}
    # symile a+b->c: rank of the partner by sum_d a_d b_d c_d, written out
    sym = objective_retrieval("symile", vecs)["image+multichannel->text"]
    mip = np.einsum("id,id,jd->ij", vecs["image"], vecs["multichannel"], vecs["text"])
    want = (mip > np.diag(mip)[:, None]).sum(1) + 1
    assert sym["R@1"] == pytest.approx(float((want == 1).mean())) and sym["median_rank"] == float(np.median(want))
