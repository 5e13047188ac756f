"""`clens train RECIPE.toml --out DIR`: train a native checkpoint with any objective of cl_core.objectives.

Deterministic for a seed (data order from seeded generators, CPU deterministic algorithms), resumable
from the last saved step (state written atomically, read back weights-only), mixed precision on GPU.
Samples may lack modalities: pairwise objectives use the rows where both modalities are present,
multi-way objectives the rows where all are. Ends by writing the checkpoint and a model card
(JSON + Markdown) with the recipe, the data and held-out retrieval metrics.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cl_core import objectives
from cl_core.analysis.metrics import ranks_from_scores, report_from_ranks, retrieval_report
from cl_core.atomic import atomic_write, write_text_atomic
from cl_core.choices import OBJECTIVE_FUSION
from cl_core.errors import ClensError
from cl_core.formats import MODEL_CARD_JSON, MODEL_CARD_MD, TRAIN_STATE
from cl_core.modality import Item, Modality
from cl_core.models.device import pick_device
from cl_core.models.native import FORMAT_TAG, NativeModel, NativeNet, from_config, save_native
from cl_core.objectives import fusion_scores
from cl_core.task import TaskState

PAIRWISE = {"info_nce", "siglip", "dcl"}


@dataclass
class Dataset:
    """Decoded items per modality; None where a sample lacks that modality."""

    items: dict[Modality, list[Item | None]]
    description: dict[str, Any]
    groups: list[str]  # per sample, e.g. "single" / "compositional", for separate reporting

    def __len__(self) -> int:
        return len(self.groups)


def load_recipe(path: str | Path) -> dict[str, Any]:
    try:
        recipe = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ClensError(f"{path}: unreadable recipe: {exc}") from None
    for section in ("model", "data", "train"):
        if section not in recipe:
            raise ClensError(f"{path}: recipe needs a [{section}] section")
    objective = recipe["train"].get("objective", "info_nce")
    if objective not in objectives.OBJECTIVES:
        raise ClensError(f"{path}: unknown objective {objective!r}; choose from {', '.join(objectives.OBJECTIVES)}")
    pair_weights(recipe, where=str(path))  # fail at load, not after the data is prepared
    objective_options(recipe, list(recipe["model"].get("towers", {})), where=str(path))
    augment_option(recipe, where=str(path))
    return recipe


def objective_options(recipe: dict[str, Any], order: list[str], where: str = "recipe") -> dict[str, Any]:
    """The objective's keywords besides the logit scale. `order`: the modalities in the order they are passed.

    siglip: logit_bias (initial value). gram: anchor, the modality whose rows are contrasted against the
    others' tuples; the GRAM paper anchors on text, and so does the default here: with a non-text anchor the
    loss is solved by making two picture modalities collinear (the volume is then zero whatever the text
    says), and the text tower learns nothing.
    """
    t = recipe["train"]
    objective = t.get("objective", "info_nce")
    if objective == "siglip":
        return {"logit_bias": float(t.get("logit_bias", -10.0))}
    if objective == "gram":
        anchor = t.get("anchor") or ("text" if "text" in order else order[0])
        if anchor not in order:
            raise ClensError(f"{where}: gram anchor {anchor!r} is not one of the model's towers ({', '.join(order)})")
        return {"anchor": order.index(anchor)}
    return {}


def pair_weights(recipe: dict[str, Any], where: str = "recipe") -> dict[frozenset[Modality], float]:
    """[train] pair_weights = { "image-multichannel" = 0.25 }: a pairwise objective's weighted mean over pairs.

    Why: a pair that is solved early (two pictures of the same cells) keeps pulling the shared embedding
    towards instance detail the third modality cannot see; weighting it down leaves the capacity to the rest.
    Unnamed pairs weigh 1.
    """
    t = recipe["train"]
    raw = t.get("pair_weights") or {}
    if raw and t.get("objective", "info_nce") not in PAIRWISE:
        raise ClensError(f"{where}: pair_weights applies to pairwise objectives ({', '.join(sorted(PAIRWISE))})")
    towers = set(recipe["model"].get("towers", {}))
    out: dict[frozenset[Modality], float] = {}
    for key, value in raw.items():
        names = key.split("-")
        if len(names) != 2 or names[0] == names[1] or not set(names) <= towers:
            raise ClensError(f"{where}: pair_weights key {key!r} must be two of the model's towers joined by '-' "
                             f"({', '.join(sorted(towers))})")
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ClensError(f"{where}: pair_weights[{key!r}] must be a finite number >= 0, got {value!r}")
        out[frozenset(Modality(n) for n in names)] = float(value)
    return out


def model_config(recipe: dict[str, Any]) -> dict[str, Any]:
    m = recipe["model"]
    return {"format": FORMAT_TAG, "name": m.get("name", "model"), "embed_dim": int(m["embed_dim"]),
            "towers": m["towers"],
            # what the model was trained to score: the app then fuses several query items the same way
            "objective": recipe["train"].get("objective", "info_nce")}


# ---- data sources ------------------------------------------------------------------------------------

def _shapes_sounds(data: dict[str, Any], seed: int, count: int, split: str
                   ) -> tuple[dict[Modality, list[Item | None]], list[str], str]:
    from cl_core.demo.worlds import shapes_sounds as ss
    from cl_core.modality import AudioClip

    samples = ss.make_world(seed, count, float(data.get("compositional_fraction", 0.15)))
    items: dict[Modality, list[Item | None]] = {
        Modality.IMAGE: [Item(f"{split}:{s.index}", Modality.IMAGE, s.image) for s in samples],
        Modality.AUDIO: [Item(f"{split}:{s.index}", Modality.AUDIO, AudioClip(s.audio, ss.RATE)) for s in samples],
        Modality.TEXT: [Item(f"{split}:{s.index}", Modality.TEXT, s.caption) for s in samples],
    }
    return items, ["compositional" if s.compositional else "single" for s in samples], ss.__doc__ or ""


def _tissue(data: dict[str, Any], seed: int, count: int, split: str
            ) -> tuple[dict[Modality, list[Item | None]], list[str], str]:
    from cl_core.demo.worlds import tissue as ts
    from cl_core.modality import ChannelStack

    samples = ts.make_world(seed, count)
    items: dict[Modality, list[Item | None]] = {
        Modality.IMAGE: [Item(f"{split}:{s.index}", Modality.IMAGE, s.he) for s in samples],
        Modality.MULTICHANNEL: [Item(f"{split}:{s.index}", Modality.MULTICHANNEL, ChannelStack(s.mif, ts.CHANNELS))
                                for s in samples],
        Modality.TEXT: [Item(f"{split}:{s.index}", Modality.TEXT, s.text) for s in samples],
    }
    return items, ["all"] * count, ts.__doc__ or ""


WORLDS = {"shapes_sounds": _shapes_sounds, "tissue": _tissue}


def world_dataset(data: dict[str, Any], split: str) -> Dataset:
    """A generated world (WORLDS), train or held-out split (disjoint seeds)."""
    world = str(data.get("world"))
    if world not in WORLDS:
        raise ClensError(f"unknown data world {world!r} (known: {', '.join(WORLDS)})")
    seed = int(data.get("seed", 0)) + (0 if split == "train" else 10_000)
    count = int(data["train"] if split == "train" else data["heldout"])
    items, groups, doc = WORLDS[world](data, seed, count, split)
    drop = float(data.get("missing_fraction", 0.0))
    if drop and split == "train":  # some samples lose one modality, to train with missing data
        rng = np.random.default_rng(seed + 1)
        mods = list(items)
        for i in range(count):
            if rng.random() < drop:
                items[mods[int(rng.integers(len(mods)))]][i] = None
    description = {"world": world, "split": split, "samples": count, "seed": seed, "doc": doc.strip()}
    return Dataset(items, description, groups)


# ---- features: preprocessing once, with the checkpoint's own preprocessing ---------------------------

def prepare_features(net: NativeNet, config: dict[str, Any], data: Dataset, device: torch.device
                     ) -> dict[Modality, tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Per modality: model-ready inputs for every sample (zeros where missing) and the presence mask.

    Frozen sentence encoders are run once here; training then sees their vectors (`sentence`).
    """
    model = from_config(config, net, Path("."), torch.device("cpu"))
    out = {}
    for modality, column in data.items.items():
        present = torch.tensor([it is not None for it in column])
        fill = next(it for it in column if it is not None)
        batch = [it if it is not None else fill for it in column]
        tensors: dict[str, list[torch.Tensor]] = {}
        for start in range(0, len(batch), 256):
            prepared = model.prepare(modality, batch[start:start + 256])
            if prepared.groups is not None and any(g != 1 for g in prepared.groups):
                raise ClensError("training inputs must fit one window (shorten the clips or lengthen the window)")
            inputs = prepared.inputs
            tower: Any = net.towers[modality.value]
            if getattr(tower, "pool", None) == "attention":  # frozen encoder: cache its token states
                inputs = tower.cached_states([str(it.data) for it in batch[start:start + 256]])
            elif callable(getattr(tower, "sentence_embedding", None)):  # frozen encoder: cache its vectors
                inputs = {"sentence": tower.sentence_embedding(**inputs)}
            for k, v in inputs.items():
                tensors.setdefault(k, []).append(v)
        if "input_ids" in tensors:
            raise ClensError("variable-length token inputs need a fixed context length")
        out[modality] = ({k: torch.cat(v) for k, v in tensors.items()}, present)
    return out


def tower_forward(model: NativeModel, modality: Modality, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """A training forward: cached frozen-encoder features go to the trainable head, the rest as at inference."""
    tower: Any = model.net.towers[modality.value]
    if "sentence" in inputs:
        return tower.project(inputs["sentence"])
    if "states" in inputs:
        return tower.project_states(inputs["states"], inputs["mask"])
    return model.forward(modality, inputs)


def batch_loss(objective: str, embs: dict[Modality, torch.Tensor], present: dict[Modality, torch.Tensor],
               logit_scale: torch.Tensor, extra: dict[str, Any],
               weights: dict[frozenset[Modality], float] | None = None) -> torch.Tensor:
    """The objective on one batch; a pairwise one is the (weighted) mean over the pairs present in it."""
    fn = objectives.OBJECTIVES[objective]
    mods = list(embs)
    kwargs = {"logit_scale": logit_scale, **extra}
    if objective in PAIRWISE:
        terms, ws = [], []
        for a, b in itertools.combinations(mods, 2):
            both = present[a] & present[b]
            w = (weights or {}).get(frozenset((a, b)), 1.0)
            if int(both.sum()) >= 2 and w > 0:
                terms.append(fn([embs[a][both], embs[b][both]], **kwargs))
                ws.append(w)
        if not terms:
            raise ClensError("no batch rows with two modalities present")
        w_t = torch.tensor(ws, dtype=terms[0].dtype, device=terms[0].device)
        return (torch.stack(terms) * w_t).sum() / w_t.sum()
    every = torch.stack([present[m] for m in mods]).all(0)
    return fn([embs[m][every] for m in mods], **kwargs)


def dihedral(pixels: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Row i of [B, C, H, H] turned by k[i] quarter turns, then mirrored left-right if k[i] >= 4 (the 8 symmetries
    of a square). Training augmentation for pictures whose meaning does not depend on orientation (tissue:
    a section has no up); each sample's modalities get the same k, so their layouts still correspond."""
    out = pixels.clone()
    for e in range(8):
        rows = (k == e).nonzero().flatten()
        if len(rows):
            turned = torch.rot90(pixels[rows], e % 4, dims=(-2, -1))
            out[rows] = turned.flip(-1) if e >= 4 else turned
    return out


AUGMENTS = ("none", "dihedral")


def augment_option(recipe: dict[str, Any], where: str = "recipe") -> str:
    augment = str(recipe["train"].get("augment", "none"))
    if augment not in AUGMENTS:
        raise ClensError(f"{where}: augment must be one of {', '.join(AUGMENTS)}, got {augment!r}")
    return augment


# ---- the loop ----------------------------------------------------------------------------------------

def _save_state(path: Path, net: NativeNet, opt: torch.optim.Optimizer, step: int, history: list[float]) -> None:
    buf = io.BytesIO()
    torch.save({"model": net.checkpoint_state(), "optimizer": opt.state_dict(), "step": step,
                "history": torch.tensor(history)}, buf)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())


def train(recipe: dict[str, Any], out: Path, state: TaskState | None = None, device: str | None = None
          ) -> dict[str, Any]:
    """Train (or resume) as the recipe says; write the checkpoint and its model card into `out`."""
    state = state or TaskState()
    t = recipe["train"]
    seed = int(t.get("seed", 0))
    dev = pick_device(device or t.get("device"))
    torch.manual_seed(seed)
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    config = model_config(recipe)
    net = NativeNet(config)
    if bool(t.get("learn_logit_scale", True)) is False:
        net.logit_scale.requires_grad_(False)
    train_data = world_dataset(recipe["data"], "train")
    feats = prepare_features(net, config, train_data, torch.device("cpu"))
    net.to(dev)
    runner = from_config(config, net, out, dev)  # the inference forward and preprocessing, reused
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=float(t.get("lr", 1e-3)), weight_decay=float(t.get("weight_decay", 1e-4)))
    n = len(train_data)
    bs = int(t.get("batch_size", 128))
    steps_per_epoch = max(1, n // bs)
    total = steps_per_epoch * int(t.get("epochs", 10))
    step, history = 0, []
    state_path = out / TRAIN_STATE
    if state_path.is_file():  # resume
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
        net.load_state_dict(saved["model"], strict=False)
        opt.load_state_dict(saved["optimizer"])
        step = int(saved["step"])
        history = [float(x) for x in saved["history"]]
        state.message(f"resuming from step {step}")
    cosine = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))  # noqa: E731
    for group in opt.param_groups:
        group.setdefault("initial_lr", group["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine, last_epoch=step - 1)
    objective = t.get("objective", "info_nce")
    extra = objective_options(recipe, [m.value for m in feats])
    weights = pair_weights(recipe)
    augment = augment_option(recipe)
    save_every = int(t.get("save_every", 200))
    use_amp = dev.type == "cuda"
    started, first_step = time.monotonic(), step
    net.train()
    while step < total:
        epoch, offset = divmod(step, steps_per_epoch)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        idx = order[offset * bs:(offset + 1) * bs]
        state.check_cancelled()
        embs, present = {}, {}
        turns = (torch.randint(0, 8, (len(idx),), generator=torch.Generator().manual_seed(seed * 7_919 + step))
                 .to(dev) if augment == "dihedral" else None)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            for modality, (inputs, mask) in feats.items():
                batch = {k: v[idx].to(dev) for k, v in inputs.items()}
                pixels = batch.get("pixels")
                if turns is not None and pixels is not None and pixels.shape[-1] == pixels.shape[-2]:
                    batch["pixels"] = dihedral(pixels, turns)
                embs[modality] = tower_forward(runner, modality, batch)
                present[modality] = mask[idx].to(dev)
        scale = net.logit_scale.exp().clamp(max=100.0)
        loss = batch_loss(objective, {m: e.float() for m, e in embs.items()}, present, scale, extra, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            net.logit_scale.clamp_(0, math.log(100.0))
        step += 1
        history.append(loss.item())
        done = step - first_step
        eta = (time.monotonic() - started) / done * (total - step)
        state.set_progress(step, total, f"epoch {epoch + 1} loss {history[-1]:.4f} ETA {int(eta // 60)}:{int(eta % 60):02d}")
        if step % save_every == 0 or step == total:
            _save_state(state_path, net, opt, step, history)
    net.eval()
    save_native(out, config, net)
    card = evaluate_and_card(recipe, config, net, out, history, train_data, dev)
    return card


def evaluate_and_card(recipe: dict[str, Any], config: dict[str, Any], net: NativeNet, out: Path,
                      history: list[float], train_data: Dataset, dev: torch.device) -> dict[str, Any]:
    heldout = world_dataset(recipe["data"], "heldout")
    model = from_config(config, net, out, dev)
    vectors = {m: model.encode(m, [it for it in col if it is not None]) for m, col in heldout.items.items()}
    groups = np.array(heldout.groups)
    objective = recipe["train"].get("objective", "info_nce")
    metrics: dict[str, Any] = {}
    native: dict[str, Any] = {}
    for subset in sorted(set(groups)):
        mask = groups == subset
        metrics[subset] = {f"{a.value}->{b.value}": retrieval_report(vectors[a][mask], vectors[b][mask])
                           for a in vectors for b in vectors if a != b}
        native[subset] = objective_retrieval(objective, {m.value: v[mask] for m, v in vectors.items()})
    card = {"name": config["name"], "format": FORMAT_TAG, "recipe": recipe,
            "data": {"train": train_data.description | {"doc": None}, "heldout": heldout.description},
            "training": {"steps": len(history), "final_loss": history[-1] if history else None,
                         "loss_curve_every_50": history[::50]},
            "heldout_metrics": metrics, "heldout_objective_score": native}
    write_text_atomic(out / MODEL_CARD_JSON, json.dumps(card, indent=2, default=str))
    write_text_atomic(out / MODEL_CARD_MD, card_markdown(card, heldout.description.get("doc", "")))
    return card




def objective_retrieval(objective: str, vectors: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Held-out retrieval scored as the objective scores, with the search's own fusion of that name.

    Every modality is retrieved from all the others together ("a+b->c": mean of cosines, Symile's multilinear
    inner product, minus GRAM's volume), as those papers report; with GRAM, whose score for a single pair is
    sqrt(1 - cos²) and so blind to the cosine's sign, single pairs too. Cosine pairs are the main table.
    """

    fusion = OBJECTIVE_FUSION.get(objective, "mean")
    names = list(vectors)
    out: dict[str, dict[str, float]] = {}
    queries = [[q] for q in names] if fusion == "gram" else []
    if len(names) >= 3:
        queries += [[q for q in names if q != g] for g in names]
    for qs in queries:
        for g in (g for g in names if g not in qs):
            scores = np.stack([fusion_scores(fusion, np.stack([vectors[q][i] for q in qs]), vectors[g])
                               for i in range(len(vectors[g]))])
            out[f"{'+'.join(qs)}->{g}"] = report_from_ranks(ranks_from_scores(scores))
    return out


def _table(pairs: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| query -> gallery | R@1 | R@5 | R@10 | median rank |", "|---|---|---|---|---|"]
    for pair, m in pairs.items():
        lines.append(f"| {pair} | {m['R@1']:.3f} | {m['R@5']:.3f} | {m['R@10']:.3f} | {m['median_rank']:.0f} |")
    return lines


def card_markdown(card: dict[str, Any], doc: str) -> str:
    objective = card["recipe"]["train"].get("objective", "info_nce")
    lines = [f"# {card['name']}", "", f"Native Contrastive Lens checkpoint, objective "
             f"`{objective}`, {card['training']['steps']} steps, "
             f"final training loss {card['training']['final_loss']:.4f}.", "", "## Held-out retrieval", "",
             "Cosine similarity, as the search panels rank.", ""]
    for subset, pairs in card["heldout_metrics"].items():
        first = next(iter(pairs.values()))
        lines += [f"### {subset} items (n = {first['n']})", "", *_table(pairs), ""]
    native = {s: p for s, p in card.get("heldout_objective_score", {}).items() if p}
    if native:
        lines += [f"## Held-out retrieval scored as `{objective}` scores", "",
                  "Each modality retrieved from the others together (a+b->c) by the search's fusion of the "
                  "objective's score (mean of cosines; symile: multilinear inner product; gram: minus the Gramian "
                  "volume, which also scores single pairs differently from the cosine: sqrt(1 - cos²)).", ""]
        for subset, pairs in native.items():
            lines += [f"### {subset} items", "", *_table(pairs), ""]
    lines += ["## Recipe", "", "```json", json.dumps(card["recipe"], indent=2), "```", "", "## Data", "", doc, ""]
    return "\n".join(lines)


def comparison_markdown(cards: dict[str, dict[str, Any]], subset: str = "all", section: str = "heldout_metrics",
                        joint_only: bool = False) -> str:
    """A table of held-out R@10 per retrieval direction for models trained with different objectives.

    section: "heldout_metrics" (cosine pairs) or "heldout_objective_score" (each model scored as its objective
    scores); joint_only keeps the directions that query with several modalities at once (a+b->c).
    """
    names = list(cards)
    keys = [k for k in cards[names[0]][section][subset] if not joint_only or "+" in k]
    keys = [k for k in keys if all(k in c.get(section, {}).get(subset, {}) for c in cards.values())]
    lines = ["| objective | " + " | ".join(keys) + " | mean |", "|---" * (len(keys) + 2) + "|"]
    for name in names:
        metrics = cards[name][section][subset]
        values = [metrics[k]["R@10"] for k in keys]
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {np.mean(values):.3f} |")
    return "\n".join(lines)


def add_comparison(folder: Path, cards: dict[str, dict[str, Any]], subset: str = "all") -> None:
    """Record an objective comparison in the card of the model kept in `folder`: cosine pairs (what the panels
    show), and, where every card has it, retrieval from the other modalities scored as each objective scores."""
    card = json.loads((folder / MODEL_CARD_JSON).read_text(encoding="utf-8"))
    card["objective_comparison"] = {name: {"cosine": c["heldout_metrics"][subset],
                                           "objective_score": c.get("heldout_objective_score", {}).get(subset, {})}
                                    for name, c in cards.items()}
    write_text_atomic(folder / MODEL_CARD_JSON, json.dumps(card, indent=2, default=str))
    text = ("Held-out Recall@10 of the same architecture and data trained with each objective; the bundled model "
            "is the one with the best mean of the first table.\n\nPairwise cosine retrieval (what the search "
            "panels show):\n\n" + comparison_markdown(cards, subset) + "\n")
    if all(c.get("heldout_objective_score", {}).get(subset) for c in cards.values()):
        text += ("\nEach modality retrieved from the other two together, scored as each objective scores (mean of "
                 "cosines for info_nce, the multilinear inner product for symile, minus the Gramian volume for "
                 "gram), as the Symile and GRAM papers evaluate:\n\n"
                 + comparison_markdown(cards, subset, "heldout_objective_score", joint_only=True) + "\n")
    md = (folder / MODEL_CARD_MD).read_text(encoding="utf-8")
    md = md.split("\n## Objective comparison")[0].rstrip() + "\n\n## Objective comparison\n\n" + text
    write_text_atomic(folder / MODEL_CARD_MD, md)
