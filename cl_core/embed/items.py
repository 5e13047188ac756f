"""The embedding job: files and texts in, normalised vectors out, every failure named and kept.

Plain core code driven by a TaskState (progress, cancel). A file that fails to read or encode is
reported with its reason and the job goes on; rows that come out NaN, infinite or zero are quarantined
with a reason, never silently dropped or mixed into results; a cancelled job returns all it finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.preparation import fit_to
from cl_core.embed.sources import is_gallery_manifest
from cl_core.errors import Cancelled, ClensError, Failure, ReaderError
from cl_core.formats import SIDECAR_SUFFIXES
from cl_core.modality import Item, Modality
from cl_core.models.base import BaseModel, Prepared
from cl_core.readers import ReadLimits
from cl_core.task import Progress, TaskState


@dataclass
class EmbedResult:
    items: list[Item] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    failures: list[Failure] = field(default_factory=list)
    cancelled: bool = False
    model_fingerprint: str = ""  # what the vectors were computed with (set by the actions layer)

    @property
    def quarantined(self) -> list[Failure]:
        return [f for f in self.failures if f.stage == "quarantine"]


FILE_CHUNK = 64  # files decoded and embedded together by embed_paths


def list_files(paths: Sequence[str | Path]) -> list[Path]:
    return walk_files(paths)[0]


def walk_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[Failure]]:
    """The files named, folders walked (sorted; hidden files and channel-name sidecars left out), and a
    note for each gallery manifest met while walking: it lists the folder's files and is not embedded as
    texts (a file named on its own is read whatever it is)."""
    files: list[Path] = []
    skipped: list[Failure] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for x in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")
                            and not x.name.endswith(SIDECAR_SUFFIXES)):
                if is_gallery_manifest(x):
                    skipped.append(Failure(str(x), "a gallery manifest (it lists this folder's files): not "
                                                   "embedded as texts; open it as a gallery to use it", "skipped"))
                else:
                    files.append(x)
        else:
            files.append(p)
    return files, skipped


def collect_items(paths: Sequence[str | Path] = (), texts: Sequence[str] = (), modality: Modality | None = None,
                  limits: ReadLimits | None = None, state: TaskState | None = None,
                  pool: DecodePool | None = None) -> tuple[list[Item], list[Failure]]:
    """Read files (folders are walked, sorted) in decoder processes, wrap texts; items in input order."""
    items: list[Item] = []
    files, failures = walk_files(paths)
    if files:
        own_pool = pool is None
        pool = pool or DecodePool()
        try:
            outcomes = pool.read_many(files, modality, limits or ReadLimits(), state)
        finally:
            if own_pool:
                pool.close()
        for got, error in outcomes:
            items.extend(got)
            if error is not None:
                failures.append(Failure(error.source, error.reason, "read"))
    for t in texts:
        if t.strip():
            items.append(Item(f"text:{t.strip()[:40]}", Modality.TEXT, t.strip()))
        else:
            failures.append(Failure("text", "empty text", "read"))
    return items, failures


def fit_modality(model: BaseModel, item: Item) -> Item:
    """Route an item to a tower the model has (an RGB image may feed a 3-channel stack tower)."""
    return fit_to(model.modalities, item)


def check_rows(vectors: np.ndarray) -> list[str | None]:
    """Per row: None if usable, else why it is quarantined."""
    reasons: list[str | None] = []
    for row in vectors:
        if not np.all(np.isfinite(row)):
            reasons.append("embedding has NaN or infinite values (numerical overflow in the model?)")
        elif float(np.linalg.norm(row)) < 1e-6:
            reasons.append("embedding is a zero vector")
        else:
            reasons.append(None)
    return reasons


def embed_items(model: BaseModel, items: Sequence[Item], state: TaskState | None = None,
                batch_size: int | None = None, failures: Sequence[Failure] = ()) -> EmbedResult:
    """Encode items grouped by modality in batches; results come back in input order."""
    state = state or TaskState()
    result = EmbedResult(failures=list(failures))
    routed: list[tuple[int, Item]] = []
    for i, it in enumerate(items):
        try:
            routed.append((i, fit_modality(model, it)))
        except ReaderError as exc:
            result.failures.append(Failure(exc.source, exc.reason, "encode"))
    done: dict[int, tuple[Item, np.ndarray]] = {}
    total = len(routed)
    by_mod: dict[Modality, list[tuple[int, Item]]] = {}
    for i, it in routed:
        by_mod.setdefault(it.modality, []).append((i, it))
    try:
        for modality, group in by_mod.items():
            size = batch_size or model.batch_sizes.get(modality, 32)
            for start in range(0, len(group), size):
                state.check_cancelled()
                chunk = group[start:start + size]
                for (i, it), vec in encode_chunk(model, modality, chunk, result.failures):
                    done[i] = (it, vec)
                state.set_progress(len(done) + _failed_count(result), total, f"embedding {modality.value}")
    except Cancelled:
        result.cancelled = True
    ordered = [done[i] for i in sorted(done)]
    vecs = np.stack([v for _, v in ordered]) if ordered else np.zeros((0, model.embed_dim), np.float32)
    keep = []
    for (it, _), reason in zip(ordered, check_rows(vecs), strict=True):
        if reason is None:
            keep.append(True)
        else:
            keep.append(False)
            result.failures.append(Failure(it.source, reason, "quarantine"))
    mask = np.array(keep, dtype=bool)
    result.items = [it for (it, _), k in zip(ordered, keep, strict=True) if k]
    result.vectors = vecs[mask] if len(vecs) else vecs
    return result


def _failed_count(result: EmbedResult) -> int:
    return sum(1 for f in result.failures if f.stage == "encode")


def encode_chunk(model: BaseModel, modality: Modality, chunk: list[tuple[Any, Item]],
                  failures: list[Failure], prepared: list[Prepared] | None = None
                  ) -> list[tuple[tuple[Any, Item], np.ndarray]]:
    """Encode a chunk (from its items, or from `prepared`, one per item, made by a decoder worker);
    if it fails, retry item by item so only the bad item is reported."""
    try:
        if prepared is not None:
            vecs = model.encode_prepared(modality, prepared)
        else:
            vecs = model.encode(modality, [it for _, it in chunk])
        return list(zip(chunk, vecs, strict=True))
    except (Cancelled, KeyboardInterrupt):
        raise
    except Exception as chunk_exc:  # noqa: BLE001 - isolate which item broke the batch
        if len(chunk) == 1:
            i, it = chunk[0]
            reason = chunk_exc.reason if isinstance(chunk_exc, ReaderError) else _describe(chunk_exc)
            failures.append(Failure(it.source, reason, "encode"))
            return []
        out = []
        for k, pair in enumerate(chunk):
            out.extend(encode_chunk(model, modality, [pair], failures, None if prepared is None else [prepared[k]]))
        return out


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClensError):
        return str(exc)
    return f"could not be embedded: {type(exc).__name__}: {exc}"


def embed_paths(model: BaseModel, paths: Sequence[str | Path] = (), texts: Sequence[str] = (),
                modality: Modality | None = None, state: TaskState | None = None,
                batch_size: int | None = None, limits: ReadLimits | None = None,
                pool: DecodePool | None = None) -> EmbedResult:
    """Read then embed, FILE_CHUNK files at a time: memory is bounded by a chunk of decoded items, not by the
    number of inputs. Rows in input order (files, then texts); a cancel keeps every finished chunk."""
    state = state or TaskState()
    files, skipped = walk_files(paths)
    out = EmbedResult(vectors=np.zeros((0, model.embed_dim), np.float32), failures=skipped)
    own_pool = pool is None and bool(files)
    pool = pool or (DecodePool() if files else None)
    chunks = [files[i:i + FILE_CHUNK] for i in range(0, len(files), FILE_CHUNK)]
    try:
        for n, chunk in enumerate([*chunks, None]):  # None: the texts, last
            start, size = n * FILE_CHUNK, len(chunk or ())

            def overall(p: Progress, start: int = start, size: int = size) -> None:  # the chunk's share of the job
                if size:
                    state.set_progress(start + round(p.fraction * size), len(files), p.text)
                else:
                    state.set_progress(p.done, p.total, p.text)

            inner = state.child(overall)
            try:
                items, failures = (collect_items(chunk, (), modality, limits, inner, pool) if chunk is not None
                                   else collect_items((), texts))
            except Cancelled:
                out.cancelled = True
                break
            part = embed_items(model, items, inner, batch_size, failures)
            out.items += part.items
            out.vectors = np.concatenate([out.vectors, part.vectors.reshape(-1, model.embed_dim)])
            out.failures += part.failures
            if part.cancelled:
                out.cancelled = True
                break
    finally:
        if own_pool and pool is not None:
            pool.close()
    return out


MISSING_TOWER = "model has no "


def summarise_failures(failures: Sequence[Failure]) -> list[Failure]:
    """One line per tower the model lacks instead of one per file (a tissue gallery under an image-text
    model is one message, not a hundred); every other failure stays as it is, in order."""
    out: list[Failure] = []
    groups: dict[str, list[Failure]] = {}
    for f in failures:
        if f.stage == "encode" and f.reason.startswith(MISSING_TOWER):
            if f.reason not in groups:
                groups[f.reason] = []
                out.append(f)  # placeholder, replaced below when the group has several files
            groups[f.reason].append(f)
        else:
            out.append(f)
    for reason, group in groups.items():
        if len(group) > 1:
            at = out.index(group[0])
            out[at] = Failure(f"{len(group)} items (e.g. {group[0].source})", f"{reason}; none of them embedded",
                              "encode")
    return out
