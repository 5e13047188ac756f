"""Measure a model on a gallery: retrieval metrics and zero-shot (`evaluate`), geometry (`diagnose`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cl_core.actions.gallery import embed_source
from cl_core.analysis.diagnostics import Diagnosis
from cl_core.analysis.diagnostics import diagnose as measure_geometry
from cl_core.analysis.evaluation import DEFAULT_TEMPLATES, Evaluation, paired_report, zero_shot
from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.gallery import GalleryEmbedding
from cl_core.errors import ClensError
from cl_core.models.base import BaseModel
from cl_core.search.store import index_rows_of
from cl_core.task import TaskState


def evaluate(model: BaseModel, source: str | Path, templates: Sequence[str] | None = None,
             cache: EmbeddingCache | None = None, state: TaskState | None = None,
             pool: DecodePool | None = None, allow_outside: bool = False) -> Evaluation:
    """Recall@K both ways for every modality pair of the paired samples, and zero-shot classification."""
    check_templates(templates)
    emb = embed_source(model, source, cache, state, pool, allow_outside)
    if not emb.rows:
        return Evaluation(emb, {}, {})
    return Evaluation(emb, paired_report(emb, state=state), zero_shot(model, emb, list(templates or DEFAULT_TEMPLATES)))


def evaluate_gallery(model: BaseModel, emb: GalleryEmbedding, templates: Sequence[str] | None = None,
                     state: TaskState | None = None) -> Evaluation:
    """The same on a gallery already embedded by `model` (the window's open one): only the prompts run."""
    check_templates(templates)
    if not emb.rows:
        raise ClensError("the gallery has no embedded items to evaluate")
    return Evaluation(emb, paired_report(emb, state=state), zero_shot(model, emb, list(templates or DEFAULT_TEMPLATES)))


def check_templates(templates: Sequence[str] | None) -> None:
    """Prompt templates checked before any work: each one a prompt with one {} where the label goes."""
    for template in templates or ():
        try:
            template.format("label")
        except (IndexError, KeyError, ValueError) as exc:
            raise ClensError(f"template {template!r} is not a prompt with one {{}} for the label ({exc})") from None
        if "{}" not in template:
            raise ClensError(f"template {template!r} has no {{}} where the label goes")


def diagnose(model: BaseModel, source: str | Path, k: int = 10, cache: EmbeddingCache | None = None,
             state: TaskState | None = None, pool: DecodePool | None = None,
             allow_outside: bool = False) -> Diagnosis:
    """Modality gap, alignment/uniformity, spectrum, hubness, modality bias, neighbour agreement."""
    emb = embed_source(model, source, cache, state, pool, allow_outside)
    return Diagnosis(emb, measure_geometry(emb, k, state=state) if emb.rows else {})


def diagnose_gallery(emb: GalleryEmbedding, k: int = 10, state: TaskState | None = None) -> Diagnosis:
    """The same measures on a gallery already embedded (the window's open one); hubs also named by their
    row in the index built from it."""
    if not emb.rows:
        raise ClensError("the gallery has no embedded items to measure")
    return Diagnosis(emb, measure_geometry(emb, k, state=state), index_rows_of(emb.rows))
