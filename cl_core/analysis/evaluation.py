"""Evaluation on paired data: Recall@K and median rank for every ordered modality pair, and zero-shot
classification from label prompts (CLIP's prompt ensembling: the class vector is the normalised mean of
its templates' text embeddings), with accuracy and a confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cl_core.analysis.metrics import retrieval_report
from cl_core.choices import DEFAULT_TEMPLATES
from cl_core.embed.gallery import GalleryEmbedding
from cl_core.modality import Item, Modality
from cl_core.models.base import BaseModel
from cl_core.task import TaskState


@dataclass
class Evaluation:
    embedding: GalleryEmbedding
    retrieval: dict[str, dict[str, float]]  # "a->b": R@1/5/10, median rank, n
    zero_shot: dict[str, Any]  # per modality: accuracy, labels, confusion

    def to_dict(self) -> dict[str, Any]:
        return {"retrieval": self.retrieval, "zero_shot": self.zero_shot, "items": len(self.embedding.rows),
                "failures": len(self.embedding.failures)}


def paired_vectors(emb: GalleryEmbedding, a: Modality, b: Modality) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows of samples that have both modalities, aligned by sample id (the first item of each)."""
    first: dict[Modality, dict[str, int]] = {a: {}, b: {}}
    for i, r in enumerate(emb.rows):
        if r.modality in first:
            first[r.modality].setdefault(r.sample_id, i)
    shared = [s for s in first[a] if s in first[b]]
    ia = np.array([first[a][s] for s in shared], np.int64)
    ib = np.array([first[b][s] for s in shared], np.int64)
    return rows_of(emb.vectors, ia), rows_of(emb.vectors, ib), shared


def rows_of(vectors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """vectors[idx]: a view when idx is one run of consecutive rows (a gallery job groups a modality's rows,
    so a 100k-pair evaluation holds no second copy of its vectors), else a copy."""
    if len(idx) and idx[-1] - idx[0] == len(idx) - 1 and bool(np.all(np.diff(idx) == 1)):
        return vectors[int(idx[0]):int(idx[-1]) + 1]
    return vectors[idx]


def paired_report(emb: GalleryEmbedding, ks: Sequence[int] = (1, 5, 10),
                  state: TaskState | None = None) -> dict[str, dict[str, float]]:
    """'a->b': Recall@K (query a, gallery b) and median rank, for each ordered pair with >= 2 shared samples.
    `state`: a step per direction, and cancel between them."""
    state = state or TaskState()
    out: dict[str, dict[str, float]] = {}
    mods = emb.modalities
    directions = [(a, b) for a in mods for b in mods if a is not b]
    for step, (a, b) in enumerate(directions):
        state.check_cancelled()
        state.set_progress(step, len(directions), f"ranking {a.value} -> {b.value}")
        qa, gb, shared = paired_vectors(emb, a, b)
        if len(shared) >= 2:
            out[f"{a.value}->{b.value}"] = retrieval_report(qa, gb, ks)
    return out


def class_vectors(model: BaseModel, labels: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES) -> np.ndarray:
    prompts = [t.format(label) for label in labels for t in templates]
    vecs = model.encode(Modality.TEXT, [Item(f"prompt:{p}", Modality.TEXT, p) for p in prompts])
    per = vecs.reshape(len(labels), len(templates), -1).mean(axis=1)
    return per / np.linalg.norm(per, axis=1, keepdims=True)


def zero_shot(model: BaseModel, emb: GalleryEmbedding,
              templates: Sequence[str] = DEFAULT_TEMPLATES) -> dict[str, dict[str, Any]]:
    """Per non-text modality with labelled items: accuracy and confusion matrix over the gallery's labels."""
    if Modality.TEXT not in model.modalities:
        return {}
    labels = sorted({r.label for r in emb.rows if r.label})
    if len(labels) < 2:
        return {}
    classes = class_vectors(model, labels, templates)
    out: dict[str, dict[str, Any]] = {}
    for modality in emb.modalities:
        if modality is Modality.TEXT:
            continue
        idx = [i for i, r in enumerate(emb.rows) if r.modality is modality and r.label]
        if not idx:
            continue
        truth = np.array([labels.index(emb.rows[i].label or "") for i in idx])
        pred = np.argmax(emb.vectors[idx] @ classes.T, axis=1)
        confusion = np.zeros((len(labels), len(labels)), np.int64)
        np.add.at(confusion, (truth, pred), 1)
        out[modality.value] = {"accuracy": float((pred == truth).mean()), "n": len(idx), "labels": labels,
                               "confusion": confusion.tolist(), "templates": list(templates)}
    return out
