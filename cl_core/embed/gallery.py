"""Embed a gallery: cached items cost nothing, the rest are decoded in worker processes while the model runs.

Decoding (DecodePool.stream, a window of files ahead) overlaps the batched forward pass. Finished files are
written to the cache every `flush_rows` rows or FLUSH_EVERY_S seconds, whichever comes first, and when the
job stops, so a cancelled job keeps what it finished, a killed one all but its last few seconds, and running
it again continues from there. Files that fail are listed with their reasons;
NaN/inf/zero rows are quarantined (cached as such, so they are counted again without re-embedding).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cl_core.embed.cache import Cached, EmbeddingCache, Record
from cl_core.embed.decode_pool import DEFAULT_READER, DecodePool, PreparedOutcome, outcome
from cl_core.embed.items import check_rows, encode_chunk, fit_modality
from cl_core.embed.preparation import ItemOutcome, Preparation, rebuild
from cl_core.embed.sources import Entry, Gallery
from cl_core.embed.worker import read_in_worker
from cl_core.errors import Cancelled, Failure, ReaderError
from cl_core.hashing import text_digest
from cl_core.modality import Item, Modality
from cl_core.models.base import BaseModel, Prepared
from cl_core.models.fingerprint import fingerprint_of
from cl_core.readers import ReadLimits
from cl_core.task import TaskState

FLUSH_EVERY_S = 5.0  # durable progress by time too: a slow model may take minutes to reach flush_rows


@dataclass(frozen=True, slots=True)
class Row:
    """One embedded item of a gallery (a file gives one, a CSV of texts one per row). Slotted: a gallery of a
    million items holds a million of these."""

    entry: int
    sample_id: str
    source: str
    modality: Modality
    label: str | None = None
    text: str | None = None


@dataclass
class GalleryEmbedding:
    gallery: Gallery
    model_fingerprint: str
    rows: list[Row] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    failures: list[Failure] = field(default_factory=list)
    cancelled: bool = False
    from_cache: int = 0  # items served by the cache
    embedded: int = 0  # items run through the model in this job

    @property
    def modalities(self) -> list[Modality]:
        return list(dict.fromkeys(r.modality for r in self.rows))

    def indices(self, modality: Modality) -> np.ndarray:
        return np.array([i for i, r in enumerate(self.rows) if r.modality is modality], dtype=np.int64)

    @property
    def quarantined(self) -> list[Failure]:
        return [f for f in self.failures if f.stage == "quarantine"]


class _Staging:
    """Records of finished files, waiting to be written together (or kept in memory without a cache)."""

    def __init__(self, cache: EmbeddingCache | None, model_fp: str, flush_rows: int,
                 flush_seconds: float = FLUSH_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.cache, self.fp, self.flush_rows = cache, model_fp, flush_rows
        self.flush_seconds, self.clock = flush_seconds, clock
        self._last = clock()
        self.records: list[Record] = []
        self.complete: dict[str, int] = {}  # waiting to be written
        self.completed: dict[str, int] = {}  # every file finished whole in this job
        self.memory: dict[str, list[Record]] = {}  # everything embedded by this job, by digest

    def add_file(self, digest: str, records: list[Record], complete: bool) -> None:
        self.memory[digest] = records
        self.records.extend(records)
        if complete:
            self.complete[digest] = self.completed[digest] = len(records)
        if len(self.records) >= self.flush_rows or self.clock() - self._last >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if self.cache is not None and (self.records or self.complete):
            self.cache.put(self.fp, self.records, self.complete)
        self.records, self.complete = [], {}
        self._last = self.clock()


def entry_digests(gallery: Gallery, cache: EmbeddingCache | None, state: TaskState
                  ) -> tuple[dict[int, str], list[Failure]]:
    """Each entry's key: its file's content digest (memoised in the cache), or its text's; files that cannot
    be opened are failures."""
    files = [i for i, e in enumerate(gallery.entries) if e.path is not None]
    found: dict[int, str | OSError] = {}
    for start in range(0, len(files), 512):  # hashed in chunks: progress and cancel in between
        state.check_cancelled()
        state.set_progress(start, len(files), "checking files")
        chunk = files[start:start + 512]
        paths = [gallery.entries[i].path for i in chunk]
        hashed = cache.file_digests(paths) if cache is not None else [  # type: ignore[arg-type]
            f"path:{p.resolve()}" for p in paths]  # type: ignore[union-attr]
        found.update(zip(chunk, hashed, strict=True))
    digests: dict[int, str] = {}
    failures: list[Failure] = []
    for i, entry in enumerate(gallery.entries):
        got = found[i] if i in found else text_digest(entry.text or "")
        if isinstance(got, OSError):
            failures.append(Failure(entry.source, f"cannot open: {got.strerror or got}", "read"))
        else:
            digests[i] = got
    return digests, failures


def embed_gallery(model: BaseModel, gallery: Gallery, cache: EmbeddingCache | None = None,
                  state: TaskState | None = None, pool: DecodePool | None = None, batch_size: int | None = None,
                  limits: ReadLimits | None = None, flush_rows: int = 2048,
                  flush_seconds: float | None = None) -> GalleryEmbedding:
    """Embed every entry (cache first); partial results are returned when cancelled."""
    state = state or TaskState()
    fp = fingerprint_of(model, cache.file_digest if cache is not None else None)
    out = GalleryEmbedding(gallery, fp)
    out.failures.extend(gallery.refused)
    digests, unreadable = entry_digests(gallery, cache, state)
    out.failures.extend(unreadable)
    hits = cache.lookup(fp, digests.values()) if cache is not None else {}
    todo = [i for i in digests if digests[i] not in hits]
    staging = _Staging(cache, fp, flush_rows, FLUSH_EVERY_S if flush_seconds is None else flush_seconds)
    own_pool = pool is None
    pool = pool or DecodePool()
    try:
        _run(model, gallery, todo, digests, staging, out, state, pool, batch_size, limits or ReadLimits())
    except Cancelled:
        out.cancelled = True
    finally:
        staging.flush()
        if own_pool:
            pool.close()
    _assemble(model, out, digests, hits, staging.memory, cache)
    return out


@dataclass
class ShardResult:
    """What one shard of a gallery gave, ready for EmbeddingCache.put on whichever machine holds the cache."""

    records: list[Record]
    complete: dict[str, int]  # digest -> item count, for files whose every item was embedded
    failures: list[Failure]
    embedded: int


def embed_shard(model: BaseModel, gallery: Gallery, digests: dict[int, str], state: TaskState | None = None,
                pool: DecodePool | None = None, batch_size: int | None = None,
                limits: ReadLimits | None = None, decoded: list[PreparedOutcome] | None = None) -> ShardResult:
    """Embed the given entries (keyed by the digests the caller computed) with no cache: the same decoding,
    batching and checks as embed_gallery, the records handed back instead of stored (a Ray actor's work).
    `decoded`: the shard's files already read and prepared elsewhere (`decode_files`, in Ray tasks)."""
    state = state or TaskState()
    out = GalleryEmbedding(gallery, "")
    staging = _Staging(None, "", flush_rows=1 << 62)
    own_pool = pool is None and decoded is None
    pool = pool or (DecodePool() if decoded is None else None)
    try:
        _run(model, gallery, list(digests), digests, staging, out, state, pool, batch_size, limits or ReadLimits(),
             decoded)
    finally:
        if own_pool and pool is not None:
            pool.close()
    records = [r for rs in staging.memory.values() for r in rs]
    return ShardResult(records, dict(staging.completed), out.failures, out.embedded)


def decode_files(paths: Sequence[Path], modalities: Sequence[Modality | None], limits: ReadLimits,
                 preparation: Preparation, reader: str = DEFAULT_READER) -> list[PreparedOutcome]:
    """Read and prepare files in this process, as a decoder-pool worker does (a Ray task's work)."""
    return [outcome(read_in_worker(reader, str(path), modality, limits, preparation))
            for path, modality in zip(paths, modalities, strict=True)]


def _run(model: BaseModel, gallery: Gallery, todo: list[int], digests: dict[int, str], staging: _Staging,
         out: GalleryEmbedding, state: TaskState, pool: DecodePool | None, batch_size: int | None,
         limits: ReadLimits, decoded: list[PreparedOutcome] | None = None) -> None:
    batcher = _Batcher(model, staging, out, batch_size)
    files = [i for i in todo if gallery.entries[i].path is not None]
    texts = [i for i in todo if gallery.entries[i].path is None]
    total, done = len(todo), 0

    def add_texts() -> None:
        nonlocal done
        for i in texts:
            entry = gallery.entries[i]
            batcher.add(digests[i], entry, [Item(entry.source, Modality.TEXT, entry.text or "")])
            done += 1
            state.set_progress(done, total, "embedding texts")
            state.check_cancelled()
        texts.clear()

    paths: Sequence[Path] = [gallery.entries[i].path for i in files]  # type: ignore[misc]
    declared = [gallery.entries[i].modality for i in files]
    # one stream for every file: the workers decode and preprocess ahead while the main process runs the
    # model, the texts included (they are embedded once the first files are on their way)
    stacks: list[tuple[str, tuple[str, ...]]] = []  # (file, channel names), for the notes below
    stream: Iterator[tuple[int, PreparedOutcome]]
    if decoded is not None:
        if len(decoded) != len(paths):
            raise ValueError(f"{len(decoded)} decoded files for {len(paths)} paths")
        stream = iter(enumerate(decoded))
    else:
        assert pool is not None
        stream = pool.stream_prepared(paths, declared, limits, Preparation.of(model), state,
                                      window=pool.workers * 32)
    try:
        for k, (items, error, prepared) in stream:
            i = files[k]
            entry = gallery.entries[i]
            if error is not None:
                out.failures.append(Failure(error.source, error.reason, "read"))
            else:
                batcher.add(digests[i], entry, items, prepared)
                stacks.extend((entry.source, it.meta["channel_names"]) for it in items
                              if it.meta.get("channel_names") and len(stacks) < MAX_NOTED_STACKS)
            done += 1
            state.set_progress(done, total, f"embedding {Path(paths[k]).name}")
            add_texts()
        add_texts()
    finally:  # also when cancelled: what is decoded is embedded (one partial batch), so the cache keeps it
        batcher.finish()
        out.failures.extend(Failure(src, note, "note") for src, note in stack_notes(model, stacks))


MAX_NOTED_STACKS = 100_000  # channel-name tuples kept for the notes (a few bytes each)


def stack_notes(model: BaseModel, stacks: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[str, str]]:
    """What the model makes of these stacks' channels (aliases used, channels ignored), once per set of names."""
    from cl_core.readers.channels import channel_notes

    pre = model.info().get("preprocessing", {}).get("multichannel", {})
    expected = [str(n) for n in pre.get("channels", [])] if isinstance(pre, dict) else []
    return channel_notes(expected, stacks) if expected and stacks else []


class _Batcher:
    """Collects decoded items per modality, runs full batches, hands finished files to staging."""

    def __init__(self, model: BaseModel, staging: _Staging, out: GalleryEmbedding, batch_size: int | None) -> None:
        self.model, self.staging, self.out, self.batch_size = model, staging, out, batch_size
        # per modality: (file digest, ordinal), the fitted item, its inputs if a worker prepared them
        self.queues: dict[Modality, list[tuple[tuple[str, int], Item, Prepared | None]]] = {}
        self.files: dict[str, dict] = {}  # digest -> {"n": items, "records": {ordinal: Record}, "failed": bool}

    def add(self, digest: str, entry: Entry, items: list[Item], prepared: list[ItemOutcome] | None = None) -> None:
        if digest in self.files:  # the same content twice in one gallery: embedded once
            return
        self.files[digest] = {"n": len(items), "records": {}, "failed": False}
        for ordinal, raw in enumerate(items):
            done = prepared[ordinal] if prepared is not None else None
            try:
                if isinstance(done, str):
                    raise ReaderError(raw.source, done)
                item = fit_modality(self.model, raw)
            except ReaderError as exc:
                self.out.failures.append(Failure(exc.source, exc.reason, "encode"))
                self._settle(digest, ordinal, None)
                continue
            queue = self.queues.setdefault(item.modality, [])
            queue.append(((digest, ordinal), item, None if done is None else rebuild(done)))
            if len(queue) >= (self.batch_size or self.model.batch_sizes.get(item.modality, 32)):
                self._run(item.modality)

    def finish(self) -> None:
        for modality in list(self.queues):
            self._run(modality)

    def _run(self, modality: Modality) -> None:
        queue, self.queues[modality] = self.queues.get(modality, []), []
        if not queue:
            return
        encoded = []
        for ready in (True, False):  # inputs a worker prepared, then items to prepare here
            part = [(k, it, p) for k, it, p in queue if (p is not None) == ready]
            if part:
                encoded += encode_chunk(self.model, modality, [(k, it) for k, it, _ in part], self.out.failures,
                                        [p for _, _, p in part] if ready else None)  # type: ignore[misc]
        got = {key: (item, vec) for (key, item), vec in encoded}
        vectors = [v for _, v in got.values()]
        reasons = check_rows(np.stack(vectors)) if vectors else []
        verdict = dict(zip(got, reasons, strict=True))
        for key, item, _ in queue:
            digest, ordinal = key
            if key not in got:
                self._settle(digest, ordinal, None)
                continue
            reason = verdict[key]
            vec = got[key][1]
            suffix = f":{item.meta['row']}" if "row" in item.meta else ""
            text = str(item.data) if modality is Modality.TEXT else None
            record = Record(digest, ordinal, modality, suffix, text, None if reason else vec, reason)
            self.out.embedded += 1
            self._settle(digest, ordinal, record)

    def _settle(self, digest: str, ordinal: int, record: Record | None) -> None:
        state = self.files[digest]
        state["records"][ordinal] = record
        if record is None:
            state["failed"] = True
        if len(state["records"]) == state["n"]:
            records = [r for _, r in sorted(state["records"].items()) if r is not None]
            # a file with an item that failed to encode is kept for this session but not marked complete,
            # so the next run tries it again
            self.staging.add_file(digest, records, complete=not state["failed"])


MODALITY_ORDER = {m: i for i, m in enumerate(Modality)}


def _assemble(model: BaseModel, out: GalleryEmbedding, digests: dict[int, str], hits: dict[str, list[Cached]],
              fresh: dict[str, list[Record]], cache: EmbeddingCache | None) -> None:
    """Rows grouped by modality; vectors gathered from the cache (memory-mapped) or this job's results."""
    rows: list[Row] = []
    sources: list[tuple[str, object]] = []
    for i, entry in enumerate(out.gallery.entries):
        digest = digests.get(i)
        if digest is None:
            continue
        if digest in hits:
            for c in hits[digest]:
                out.from_cache += 1
                if c.reason is not None:
                    out.failures.append(Failure(entry.source + c.source_suffix, c.reason, "quarantine"))
                    continue
                rows.append(_row(i, entry, c.modality, c.source_suffix, c.text))
                sources.append(("cache", c))
        elif digest in fresh:
            for r in fresh[digest]:
                if r.vector is None:
                    out.failures.append(Failure(entry.source + r.source_suffix, r.reason or "quarantined",
                                                "quarantine"))
                    continue
                rows.append(_row(i, entry, r.modality, r.source_suffix, r.text))
                sources.append(("fresh", r))
    # grouped by modality (gallery order within each), the layout indexes use: no reordered copy later
    order = sorted(range(len(rows)), key=lambda k: (MODALITY_ORDER[rows[k].modality], k))
    rows, sources = [rows[k] for k in order], [sources[k] for k in order]
    vectors = np.zeros((len(rows), model.embed_dim), np.float32)
    cached_at = [k for k, (kind, _) in enumerate(sources) if kind == "cache"]
    if cached_at and cache is not None:
        vectors[cached_at] = cache.vectors([sources[k][1] for k in cached_at], model.embed_dim)  # type: ignore[misc]
    for k, (kind, rec) in enumerate(sources):
        if kind == "fresh":
            vectors[k] = rec.vector  # type: ignore[attr-defined]
    out.rows, out.vectors = rows, vectors


def _row(i: int, entry: Entry, modality: Modality, suffix: str, text: str | None) -> Row:
    return Row(i, entry.sample_id, entry.source + suffix, modality, entry.label, text)
