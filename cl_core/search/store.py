"""An index folder: one faiss index per modality of a gallery, its rows and vectors, and a manifest.

Only indexes this app wrote are loaded. The manifest records the model fingerprint, dimension, modality
parts, normalisation and the sha256 and size of every file; a file whose checksum differs is refused
*before* faiss parses it (faiss trusts the sizes inside its files).

Saving never overwrites a file in place: the new files get fresh names, then the manifest is replaced
atomically (the commit point), then files the new manifest does not name are removed. A kill at any
moment leaves the old or the new index loadable, never a mix.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from cl_core.atomic import atomic_write, write_text_atomic
from cl_core.embed.gallery import Row
from cl_core.errors import ClensError, DimensionMismatchError
from cl_core.hashing import file_sha256, open_regular
from cl_core.modality import Modality
from cl_core.search import kinds, relevance
from cl_core.search.blob_check import BlobError, check_blob
from cl_core.search.coldread import (
    ColdRows,
    MappedArray,
    check_layout,
    forget,
    npy_header_bytes,
    npy_layout,
)
from cl_core.search.rowtable import ColdOffsets, MetaColumns, Record, RowFileError, RowTable, write_rows
from cl_core.task import TaskState

FORMAT = "contrastive-lens-index"
VERSION = 2  # 2: relevance mappings and score statistics per modality; rows as memory-mapped lines
MANIFEST = "manifest.json"
OUR_PREFIXES = ("rows-", "vectors-", "part-", "meta-")
BLOB_SUFFIXES = (".faiss", ".calib.npy", ".stats.npy", ".pq.npy", ".pqcodes.npy")  # read whole (rows' offsets: not)
MAX_MANIFEST_BYTES = 16 * 1024**2
COMPACT_KINDS = ("ivfpq", "binary")  # kinds chosen for memory: their rows are read and not kept cached
RECALL_QUERIES = 300
CALIBRATION_SAMPLE = 2048


class IndexFileError(ClensError):
    """An index folder is missing, foreign, tampered with, or built for another model."""


class FileMemo(Protocol):
    """What the app remembers between opens (the embedding cache): a file's sha256 while its identity (size,
    mtime, ctime, inode) is unchanged, and which contents, by sha256, passed a check. Reopening an index
    then costs stats and lookups, not a hash of its vectors or a walk of its faiss files' structure."""

    def content_digest(self, path: Path) -> str: ...
    def content_digests(self, paths: Sequence[Path]) -> list[str | OSError]: ...
    def vouched(self, key: str) -> bool: ...
    def vouch(self, key: str) -> None: ...


class _Digests:
    """A memo with the digests of an index's files looked up together: one query for all of them, where a
    query a file cost about as much as reading a small index's faiss file (~0.15 ms each, ten files)."""

    def __init__(self, memo: FileMemo, paths: Sequence[Path]) -> None:
        self._memo = memo
        self._known = dict(zip(paths, memo.content_digests(paths), strict=True))

    def content_digest(self, path: Path) -> str:
        got = self._known.get(path)
        if got is None:
            return self._memo.content_digest(path)
        if isinstance(got, OSError):
            raise got
        return got

    def content_digests(self, paths: Sequence[Path]) -> list[str | OSError]:
        return self._memo.content_digests(paths)

    def vouched(self, key: str) -> bool:
        return self._memo.vouched(key)

    def vouch(self, key: str) -> None:
        self._memo.vouch(key)


@dataclass
class Part:
    """The rows [start, end) of one modality and the faiss index over them."""

    modality: Modality
    start: int
    end: int
    built: kinds.Built
    recall_at_10: float | None = None
    calibration: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # global rows sampled
    stats: np.ndarray | None = None  # [D+1, D]: the rows' mean vector and covariance (relevance.target_stats)


@dataclass
class IndexSet:
    folder: Path | None
    manifest: dict[str, Any]
    rows: Sequence[Row]  # a list when built, a RowTable (decoded on demand) when loaded
    vectors: np.ndarray  # [N, D] float32, memory-mapped when loaded
    parts: dict[Modality, Part]
    meta: Mapping[str, Sequence[Any]] = field(default_factory=dict)  # the manifest's other columns, one value per row
    relevance: dict[tuple[str, str], relevance.PairFit] = field(default_factory=dict)  # (query, target) modality
    cold: ColdRows | None = None  # loaded: float rows read on demand for exact re-ranking, never kept resident

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def model_fingerprint(self) -> str:
        return str(self.manifest["model"]["fingerprint"])

    def records(self, rows: Sequence[int]) -> list[Record]:
        """Several rows and their metadata as records, in one go (a hit list's fields: no Row made for each)."""
        if isinstance(self.rows, RowTable):
            return self.rows.records(rows)
        out: list[Record] = []
        for i in rows:
            r = self.rows[i]
            out.append((r.entry, r.sample_id, r.source, r.modality.value, r.label, r.text, self.meta_of(i)))
        return out

    def meta_of(self, row: int) -> dict[str, Any]:
        """One row's metadata, empty values left out (read from its line, not from whole columns)."""
        if isinstance(self.rows, RowTable):
            return self.rows.meta_of(row)
        return {name: values[row] for name, values in self.meta.items() if values[row] not in (None, "")}

    def rerank(self, part: Part) -> kinds.Rerank:
        """Exact scores for candidate positions of `part`, read from the float vectors (on demand, not kept,
        for an index opened from its folder)."""
        cold = self.cold
        if cold is not None:
            return kinds.exact_rerank(lambda pos: cold(pos + part.start))
        return kinds.exact_rerank(self.vectors, part.start)

    def search_part(self, modality: Modality, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, global rows) of the top k of one modality; rows -1 where there are fewer than k."""
        part = self.parts[modality]
        scores, pos = kinds.search(part.built, queries, min(k, part.end - part.start), self.rerank(part))
        rows = np.where(pos >= 0, pos + part.start, -1)
        return scores, rows

    def summary(self) -> list[dict[str, Any]]:
        return [{"modality": p.modality.value, "count": p.end - p.start, "kind": p.built.kind,
                 "recall_at_10": p.recall_at_10, "bytes_per_vector": round(p.built.bytes_per_vector, 1),
                 "params": dict(p.built.params)} for p in self.parts.values()]


def modality_order(rows: Sequence[Row]) -> list[int]:
    """The order an index keeps rows in: grouped by modality, stable (gallery row order[i] is index row i)."""
    return sorted(range(len(rows)), key=lambda i: list(Modality).index(rows[i].modality))


def index_rows_of(rows: Sequence[Row]) -> np.ndarray:
    """For each of a gallery's rows, its row in an index built from them."""
    where = np.empty(len(rows), np.int64)
    where[modality_order(rows)] = np.arange(len(rows))
    return where


def build_index_set(rows: Sequence[Row], vectors: np.ndarray, model: dict[str, Any], gallery: dict[str, Any],
                    kind: str = "auto", state: TaskState | None = None, seed: int = 0,
                    meta: dict[str, list[Any]] | None = None) -> IndexSet:
    """Group rows by modality (stable), build one index per modality, measure each one's recall@10.
    `meta`: columns of per-row values (a manifest's metadata), kept in the rows' order."""
    if len(rows) != len(vectors):
        raise ValueError(f"{len(rows)} rows but {len(vectors)} vectors")
    meta = dict(meta or {})
    if any(len(values) != len(rows) for values in meta.values()):
        raise ValueError("every metadata column needs one value per row")
    if not len(rows):
        raise ClensError("nothing to index: the gallery has no embedded items")
    order = modality_order(rows)
    rows = [rows[i] for i in order]
    meta = {name: [values[i] for i in order] for name, values in meta.items()}
    if order != list(range(len(rows))):  # gallery jobs already group by modality: then no copy is made
        vectors = np.asarray(vectors, np.float32)[order]
    vectors = np.ascontiguousarray(vectors, np.float32)
    rng = np.random.default_rng(seed)
    qrows = measurement_rows(len(rows), np.random.default_rng([seed, 1]))  # (drawn first: quantisers train without them)
    parts: dict[Modality, Part] = {}
    start = 0
    mods = list(dict.fromkeys(r.modality for r in rows))
    for n, modality in enumerate(mods):
        end = start + sum(1 for r in rows if r.modality is modality)
        if state is not None:
            state.check_cancelled()
            state.set_progress(n, len(mods), f"indexing {modality.value} ({end - start:,} vectors)")
        chosen = kinds.auto_kind(end - start) if kind == "auto" else kind
        built = kinds.build(chosen, vectors[start:end], seed, held=_inside(qrows, start, end))
        calib = np.sort(rng.choice(np.arange(start, end), size=min(CALIBRATION_SAMPLE, end - start), replace=False))
        part = Part(modality, start, end, built, None, calib, relevance.target_stats(vectors[start:end], rng))
        parts[modality] = part
        start = end
    if state is not None:
        state.set_progress(len(mods), len(mods), "fitting relevance per modality pair")
    fits = relevance.fit_pairs(vectors, [r.modality.value for r in rows], [r.sample_id for r in rows],
                               [r.label for r in rows], {m.value: (p.start, p.end) for m, p in parts.items()},
                               {m.value: p.stats for m, p in parts.items() if p.stats is not None}, seed)
    index_set = IndexSet(None, {"model": model, "gallery": gallery}, rows, vectors, parts, meta, fits)
    q = np.asarray(vectors[qrows], np.float32)
    for part in parts.values():
        own = np.where((qrows >= part.start) & (qrows < part.end), qrows - part.start, -1)
        k = min(10, part.end - part.start - 1)
        if k < 1:
            continue
        if part.built.kind == "hnsw":  # its own node would guide a graph search to a left-out query: held out
            part.recall_at_10 = round(_tune_held_out(part, vectors, q, own, k, seed), 4)
            continue
        truth = kinds.exact_topk(q, vectors[part.start:part.end], k, own)
        got = kinds.tune(part.built, q, truth, k, index_set.rerank(part), exclude=own)
        why = kinds.finer_reason(part.built, got, k)
        if why:
            if state is not None:
                state.check_cancelled()
                state.set_progress(len(mods), len(mods), f"indexing {part.modality.value} again with finer codes "
                                   f"({why})")
            fine = kinds.build(part.built.kind, vectors[part.start:part.end], seed, fine=True,
                               held=_inside(qrows, part.start, part.end))
            got_fine = kinds.tune(fine, q, truth, k, index_set.rerank(part), exclude=own)
            if kinds.better(fine, got_fine, part.built, got, k):
                part.built, got = fine, got_fine
        part.recall_at_10 = round(got, 4)
    index_set.manifest = _manifest(index_set, {})
    return index_set


def _inside(rows: np.ndarray, start: int, end: int) -> np.ndarray:
    """Sorted global rows within [start, end), as positions in that part."""
    return rows[(rows >= start) & (rows < end)] - start


def _tune_held_out(part: Part, vectors: np.ndarray, q: np.ndarray, own: np.ndarray, k: int, seed: int) -> float:
    """Tune a graph index on queries it has never seen: a second graph is built without the gallery rows used
    as queries, tuned against exact search over the same rows, and its setting is kept for the real graph
    (same size within a few hundred rows). Costs a second build; beyond a million rows, the second graph
    is built over a random million."""
    n = part.end - part.start
    inside = own >= 0
    keep = ~inside | (np.cumsum(inside) <= n // 2)  # a small part keeps at least half its rows in the graph
    q, own = q[keep], own[keep]
    k = min(k, n - int((own >= 0).sum()))
    rows = np.setdiff1d(np.arange(n), own[own >= 0])
    rng = np.random.default_rng(seed)
    if len(rows) > HELD_OUT_GRAPH_MAX:
        rows = np.sort(rng.choice(rows, size=HELD_OUT_GRAPH_MAX, replace=False))
    sub = np.ascontiguousarray(vectors[part.start:part.end][rows], np.float32)
    probe = kinds.build(part.built.kind, sub, seed)
    truth = kinds.exact_topk(q, sub, k)
    got = kinds.tune(probe, q, truth, k, kinds.exact_rerank(sub))
    part.built.params.update(probe.params)
    return got


HELD_OUT_GRAPH_MAX = 1_000_000


def measurement_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gallery rows used as queries for the recall measurement: real items of every modality (so cross-modal
    queries count), each left out of its own results, never a noised copy of a stored vector."""
    return np.sort(rng.choice(n, size=min(RECALL_QUERIES, n), replace=False))


RECALL_BASIS = ("agreement with exact search: recall@10 of the index's answers against the exact top 10, for "
                "gallery items of every modality used as queries, each left out of its own results (for a graph "
                "index, left out of a second graph built to tune it; for a compact one, of its quantisers' "
                "training)")


def _manifest(s: IndexSet, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": FORMAT, "version": VERSION, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": s.manifest["model"], "gallery": s.manifest.get("gallery", {}),
        "dim": s.dim, "count": len(s.rows), "normalized": True, "metric": "inner_product",
        "parts": [{"modality": p.modality.value, "start": p.start, "end": p.end, "kind": p.built.kind,
                   "params": p.built.params, "bytes_per_vector": p.built.bytes_per_vector,
                   "recall_at_10": p.recall_at_10, "file": f"part-{p.modality.value}"} for p in s.parts.values()],
        "recall_measured": RECALL_BASIS,
        "relevance": [f.to_dict() for f in s.relevance.values()],
        "files": files,
    }


def save(index_set: IndexSet, folder: str | Path) -> Path:
    """Write the folder so that a crash at any point leaves the old or the new index (see module doc)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise IndexFileError(f"{folder}: exists and is not a folder; an index is written to a folder")
    folder.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:12]
    files: dict[str, dict[str, Any]] = {}

    def put(name: str, blob: bytes) -> None:
        with atomic_write(folder / name) as fh:
            fh.write(blob)
        files[name] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}

    rows_name = f"rows-{tag}.jsonl"
    with atomic_write(folder / rows_name) as fh:
        offsets = write_rows(fh, index_set.rows, index_set.meta)
    files[rows_name] = {"sha256": file_sha256(folder / rows_name), "bytes": (folder / rows_name).stat().st_size}
    put(f"rows-{tag}.offsets.npy", _npy_bytes(offsets))
    vec_name = f"vectors-{tag}.npy"
    with atomic_write(folder / vec_name) as fh:
        np.save(fh, np.asarray(index_set.vectors, np.float32), allow_pickle=False)
    files[vec_name] = {"sha256": file_sha256(folder / vec_name), "bytes": (folder / vec_name).stat().st_size}
    manifest = _manifest(index_set, files)
    manifest["meta_columns"] = list(index_set.meta)
    for entry, part in zip(manifest["parts"], index_set.parts.values(), strict=True):
        entry["file"] = f"part-{part.modality.value}-{tag}.faiss"
        entry["calibration"] = f"part-{part.modality.value}-{tag}.calib.npy"
        put(entry["file"], kinds.serialize(part.built))
        buf = _npy_bytes(part.calibration.astype(np.int64))
        put(entry["calibration"], buf)
        entry["stats"] = f"part-{part.modality.value}-{tag}.stats.npy"
        put(entry["stats"], _npy_bytes(np.asarray(part.stats, np.float32)))
        if part.built.pq is not None and part.built.pq_codes is not None:
            pq = part.built.pq
            entry["pq"] = f"part-{part.modality.value}-{tag}.pq.npy"
            put(entry["pq"], _npy_bytes(faiss_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub)))
            entry["pq_codes"] = f"part-{part.modality.value}-{tag}.pqcodes.npy"
            put(entry["pq_codes"], _npy_bytes(np.ascontiguousarray(part.built.pq_codes, np.uint8)))
    manifest["files"] = files
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1))
    for f in folder.iterdir():  # after the commit: what the new manifest does not name is garbage
        if f.name not in files and f.name != MANIFEST and (f.name.startswith(OUR_PREFIXES) or
                                                           (f.name.startswith(".") and f.name.endswith(".tmp"))):
            f.unlink(missing_ok=True)
    index_set.folder, index_set.manifest = folder, manifest
    return folder


def load(folder: str | Path, fingerprint: str | None = None, dim: int | None = None,
         memo: FileMemo | None = None) -> IndexSet:
    """Open an index this app wrote; refuse a foreign, tampered or other-model index with the reason.
    `memo` (the embedding cache): file digests reused while a file's identity is unchanged, and faiss files
    whose bytes (by sha256) already passed the structure check not walked again; without it every file is
    hashed and walked."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if fingerprint is not None and manifest["model"].get("fingerprint") != fingerprint:
        raise IndexFileError(f"{folder}: the index was built with another model (fingerprint "
                             f"{manifest['model'].get('fingerprint')}, model {manifest['model'].get('name')}); "
                             f"the open model's fingerprint is {fingerprint}: rebuild the index for this model")
    if dim is not None and int(manifest["dim"]) != dim:
        raise DimensionMismatchError(f"the index {folder}", int(manifest["dim"]), "the model", dim)
    opened: list[io.BufferedReader] = []
    try:
        return _load(folder, manifest, memo, opened)
    finally:
        for fh in opened:
            fh.close()
        files = manifest.get("files")
        for name in [MANIFEST, *(files if isinstance(files, dict) else ())]:  # what is needed is in memory now,
            if isinstance(name, str) and Path(name).name == name:             # or is read on demand
                forget(folder / name)


def _load(folder: Path, manifest: dict[str, Any], memo: FileMemo | None,
          opened: list[io.BufferedReader]) -> IndexSet:
    """The faiss files are checked and read by faiss on this thread; beside it (for a large index) another
    reads the arrays and checks every other file's digest, so opening costs about faiss's read alone."""
    listed = _listed(folder, manifest)
    if memo is not None:
        memo = _Digests(memo, [folder / name for name in listed])
    count, d = manifest["count"], manifest["dim"]
    _check_parts(folder, manifest)
    in_faiss = {str(p["file"]) for p in manifest["parts"]}
    rest = [name for name in listed if name not in in_faiss]
    beside = sum(listed[n]["bytes"] for n in rest if memo is None or n.endswith(BLOB_SUFFIXES))  # read or hashed
    big = min(sum(listed[n]["bytes"] for n in in_faiss), beside) >= BESIDE_FROM
    pool = ThreadPoolExecutor(1, thread_name_prefix="index-open") if big else None
    try:
        pending = pool.submit(_read_checked, folder, listed, rest, memo) if pool is not None else None
        blobs = _read_checked(folder, listed, rest, memo) if pending is None else {}
        built = {str(p["file"]): _faiss_part(folder, listed, p, d, memo, opened) for p in manifest["parts"]}
        if pending is not None:
            blobs = pending.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    rows, meta = _rows(folder, manifest)
    vec_name = next((n for n in listed if n.startswith("vectors-") and n.endswith(".npy")), None)
    if vec_name is None:
        raise IndexFileError(f"{folder / MANIFEST}: names no vectors file")
    mapped = _mapped(folder / vec_name)
    vectors = mapped.array
    if vectors.shape != (count, d) or vectors.dtype != np.float32:
        raise IndexFileError(f"{folder / vec_name}: shape {vectors.shape} {vectors.dtype} does not match the manifest")
    parts = {}
    for p in manifest["parts"]:
        part = built[p["file"]]
        calib = _npy(blobs, p["calibration"], folder)
        stats = _npy(blobs, p["stats"], folder)
        if stats.shape != (d + 1, d) or stats.dtype != np.float32 or not np.all(np.isfinite(stats)):
            raise IndexFileError(f"{folder / p['stats']}: not score statistics for {d}-d vectors")
        if "pq" in p:
            part.pq, part.pq_codes = _pq(folder, p, blobs, d, p["end"] - p["start"])
        parts[Modality(p["modality"])] = Part(Modality(p["modality"]), p["start"], p["end"], part,
                                              p.get("recall_at_10"), calib, stats)
    cold = ColdRows(folder / vec_name, (count, d), mapped.start)
    return IndexSet(folder, manifest, rows, vectors, parts, meta, _fits(folder, manifest), cold)


BESIDE_FROM = 1024**2  # both sides this large: read side by side (a thread costs ~0.1 ms; the disk answers
# both at once). A 1M binary index (48 MB of faiss codes, 144 MB of product codes) opens in 64 ms so, 99 ms one
# after the other; a 50k one (2.4 MB, 3.4 MB of arrays) in 7.5 ms, 10 ms one after the other (cold, here)


def _listed(folder: Path, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest's files, each there with the size it says (sizes and names checked before any read)."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not isinstance(manifest.get("count"), int) or \
            not isinstance(manifest.get("dim"), int) or not 0 < manifest["dim"] <= 65536:
        raise IndexFileError(f"{folder / MANIFEST}: no file list, count or dimension")
    for name, entry in files.items():
        path = folder / name
        if Path(name).name != name or not path.is_file():
            raise IndexFileError(f"{folder}: {name} named by the manifest is missing")
        if not isinstance(entry, dict) or not isinstance(entry.get("bytes"), int) \
                or not isinstance(entry.get("sha256"), str):
            raise IndexFileError(f"{folder / MANIFEST}: no size and checksum for {name}")
        if path.stat().st_size != entry["bytes"]:
            raise IndexFileError(f"{path}: size {path.stat().st_size} differs from the manifest's {entry['bytes']}")
    return files


def _digest_ok(path: Path, entry: dict[str, Any], memo: FileMemo | None,
               blob: tuple[bytes | memoryview, ...] | io.BufferedReader | None) -> None:
    """Refuse `path` unless its sha256 is the manifest's: memoised by the file's identity (a changed file is
    hashed again), else from the bytes read (the file's parts, in order), the open file streamed, or the
    file read."""
    if memo is not None:
        found = memo.content_digest(path)
    elif isinstance(blob, tuple):
        digest = hashlib.sha256()
        for part in blob:
            digest.update(part)
        found = digest.hexdigest()
    elif blob is not None:  # faiss reads it again after, from the page cache
        found = hashlib.file_digest(blob, "sha256").hexdigest()
        blob.seek(0)
    else:  # read only to be hashed: its pages are not kept (a map of it would otherwise take them up)
        found = file_sha256(path)
        forget(path)
    if found != entry["sha256"]:
        raise IndexFileError(f"{path}: checksum differs from the manifest (modified or corrupt)")


def _read_checked(folder: Path, listed: dict[str, dict[str, Any]], names: Sequence[str],
                  memo: FileMemo | None) -> dict[str, np.ndarray]:
    """Every file but the faiss ones checked against its digest; the arrays read once, each straight into
    its own memory (read-only)."""
    arrays = {}
    for name in names:
        if name.endswith(BLOB_SUFFIXES):
            arrays[name] = _read_npy(folder / name, listed[name], memo)
        else:
            _digest_ok(folder / name, listed[name], memo, None)
    return arrays


def _read_npy(path: Path, entry: dict[str, Any], memo: FileMemo | None) -> np.ndarray:
    """A listed .npy file's array, its size checked against its header before anything is allocated, and
    its digest against the manifest's. Read as np.load reads: the header, then the data straight into the
    array. Reading the whole file into a bytes object first was 2-3x slower cold here (96 MB of binary
    product codes: 79 ms against 30; 2.4 MB: 3.5 ms against 1.1): a first read that large is read ahead
    worse than a small one and the rest, and a fresh bytes object takes a page fault every 4 KB."""
    try:
        with open_regular(path) as fh:
            head = fh.read(12)
            if len(head) < 12:
                raise ValueError("shorter than a .npy header")
            head += fh.read(npy_header_bytes(head) - len(head))
            shape, dtype, start = npy_layout(head)
            check_layout(shape, dtype, start, entry["bytes"])
            arr = np.empty(shape, dtype)
            data = arr.reshape(-1).view(np.uint8).data
            if fh.readinto(data) != len(data):
                raise ValueError("it ends inside its data")
    except ValueError as exc:
        raise IndexFileError(f"{path}: not a plain .npy array: {exc}") from None
    except OSError as exc:
        raise IndexFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    _digest_ok(path, entry, memo, (head, data))
    arr.flags.writeable = False
    return arr


def _faiss_part(folder: Path, listed: dict[str, dict[str, Any]], p: dict[str, Any], d: int,
                memo: FileMemo | None, opened: list[io.BufferedReader]) -> kinds.Built:
    """A part's faiss file: checked (digest, then its own sizes, before faiss allocates anything from
    them), then read by faiss from the very file that was checked (kept open)."""
    path, kind, n = folder / p["file"], str(p["kind"]), p["end"] - p["start"]
    fh = open_regular(path)
    opened.append(fh)
    entry = listed[p["file"]]
    _digest_ok(path, entry, memo, fh)
    vouch = f"faiss-structure:{kind}:{d}:{n}:{entry['sha256']}"
    if memo is None or not memo.vouched(vouch):  # the same bytes pass the same check: walked once
        try:
            check_blob(kind, fh, d, n)
        except BlobError as exc:
            raise IndexFileError(f"{path}: {exc}") from None
        if memo is not None:
            memo.vouch(vouch)
    built = kinds.read(kind, _same_file(fh, path), p["params"], p["bytes_per_vector"])
    if built.index.ntotal != n or built.index.d != d:
        raise IndexFileError(f"{path}: holds {built.index.ntotal} vectors of {built.index.d}-d, "
                             f"the manifest says {n} of {d}-d")
    return built


def _same_file(fh: BinaryIO, path: Path) -> str:
    """A name for the file `fh` has open, even if `path` was replaced since (Linux: /proc/self/fd)."""
    fd_path = f"/proc/self/fd/{fh.fileno()}"
    return fd_path if os.path.exists(fd_path) else str(path)


def _pq(folder: Path, p: dict[str, Any], blobs: dict[str, np.ndarray], d: int, n: int) -> tuple[Any, np.ndarray]:
    """A binary part's product quantiser and codes, checked against the part's size and dimension."""
    import faiss

    if p.get("pq") not in blobs or p.get("pq_codes") not in blobs:
        raise IndexFileError(f"{folder / MANIFEST}: a binary part's codes are not listed")
    centroids = _npy(blobs, p["pq"], folder)
    codes = _npy(blobs, p["pq_codes"], folder)
    if centroids.ndim != 3 or centroids.dtype != np.float32 or centroids.shape[1] != 256 \
            or centroids.shape[0] * centroids.shape[2] != d or not np.all(np.isfinite(centroids)):
        raise IndexFileError(f"{folder / p['pq']}: not a product quantiser for {d}-d vectors")
    if codes.shape != (n, centroids.shape[0]) or codes.dtype != np.uint8:
        raise IndexFileError(f"{folder / p['pq_codes']}: not {n:,} codes of {centroids.shape[0]} bytes")
    pq = faiss.ProductQuantizer(d, centroids.shape[0], 8)
    faiss.copy_array_to_vector(centroids.ravel(), pq.centroids)
    return pq, codes


def _mapped(path: Path) -> MappedArray:
    """A listed .npy file memory-mapped read-only (its header's length bounded before it is read: np.load
    reads a header as long as its length field says, then checks it)."""
    try:
        return MappedArray(path)
    except (ValueError, OSError) as exc:
        raise IndexFileError(f"{path}: not a plain .npy array: {exc}") from None


def _npy(arrays: dict[str, np.ndarray], name: str, folder: Path) -> np.ndarray:
    """A checked array the manifest names (read by `_read_npy`)."""
    arr = arrays.get(name)
    if arr is None:
        raise IndexFileError(f"{folder / MANIFEST}: names {name}, which is not a checked array file")
    return arr


def faiss_array(vector: Any) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(vector)


def _fits(folder: Path, manifest: dict[str, Any]) -> dict[tuple[str, str], relevance.PairFit]:
    """The relevance mappings, checked: finite coefficients, modalities the index has."""
    have = {p["modality"] for p in manifest["parts"]} | {relevance.ANY}
    fits = {}
    try:
        for f in manifest.get("relevance", []):
            fit = relevance.PairFit(str(f["query"]), str(f["target"]), tuple(float(c) for c in f["coef"]),
                                    int(f["positives"]), int(f["queries"]), str(f["basis"]))
            if fit.query not in have or fit.target not in have or len(fit.coef) != relevance.N_COEF \
                    or not all(np.isfinite(fit.coef)):
                raise ValueError(f"mapping {fit.query} -> {fit.target}")
            fits[(fit.query, fit.target)] = fit
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexFileError(f"{folder / MANIFEST}: not a valid relevance mapping: {exc}") from None
    return fits


def _check_parts(folder: Path, manifest: dict[str, Any]) -> None:
    """The parts tile the manifest's rows in order (its count and dimension checked by `_listed`), one per
    modality, each naming files the manifest lists."""
    parts = manifest.get("parts")
    where = folder / MANIFEST
    count = manifest["count"]
    if not isinstance(parts, list) or not parts:
        raise IndexFileError(f"{where}: no index parts")
    start, seen = 0, set()
    for p in parts:
        ok = (isinstance(p, dict) and isinstance(p.get("start"), int) and isinstance(p.get("end"), int)
              and p["start"] == start and p["end"] > start and p.get("kind") in kinds.KINDS
              and p.get("modality") in {m.value for m in Modality} and p["modality"] not in seen
              and p.get("file") in manifest["files"] and str(p["file"]).endswith(".faiss")
              and manifest["files"][p["file"]].get("bytes", 0) > 0 and p.get("calibration") in manifest["files"]
              and p.get("stats") in manifest["files"]
              and isinstance(p.get("params"), dict))
        if not ok:
            raise IndexFileError(f"{where}: index parts do not tile its {count:,} rows (at row {start:,})")
        seen.add(p["modality"])
        start = p["end"]
    if start != count:
        raise IndexFileError(f"{where}: index parts cover {start:,} rows of {count:,}")


def _rows(folder: Path, manifest: dict[str, Any]) -> tuple[RowTable, Mapping[str, Sequence[Any]]]:
    """The rows file, mapped and cut by its offsets (each row is checked when it is read)."""
    rows_name = next((n for n in manifest["files"] if n.startswith("rows-") and n.endswith(".jsonl")), None)
    off_name = next((n for n in manifest["files"] if n.startswith("rows-") and n.endswith(".offsets.npy")), None)
    columns = manifest.get("meta_columns", [])
    if rows_name is None or off_name is None or not isinstance(columns, list) \
            or not all(isinstance(c, str) for c in columns):
        raise IndexFileError(f"{folder / MANIFEST}: names no rows file and offsets; rebuild the index")
    compact = any(p.get("kind") in COMPACT_KINDS for p in manifest.get("parts", []))
    try:  # not read whole (8 MB a million rows): a hit list needs ten pairs. Compact kinds read the pairs
        # announced together (their pages then kept: 8 B a row at most), the others map them
        offsets = ColdOffsets(folder / off_name) if compact else \
            _mapped(folder / off_name).array
        table = RowTable(folder / rows_name, offsets, columns, keep=not compact)
    except ValueError as exc:
        raise IndexFileError(f"{folder / off_name}: {exc}") from None
    except RowFileError as exc:
        raise IndexFileError(str(exc)) from None
    if len(table) != manifest.get("count"):
        raise IndexFileError(f"{folder / rows_name}: {len(table):,} rows, the manifest says {manifest.get('count')}")
    return table, MetaColumns(table)


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexFileError(f"{folder}: not an index folder (no {MANIFEST})")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise IndexFileError(f"{path}: too large for an index manifest")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFileError(f"{path}: not a valid manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFileError(f"{path}: not an index written by Contrastive Lens")
    if manifest.get("version") != VERSION:
        raise IndexFileError(f"{path}: index format version {manifest.get('version')} (this app reads {VERSION}); rebuild it")
    if not manifest.get("normalized") or manifest.get("metric") != "inner_product":
        raise IndexFileError(f"{path}: the index is not over normalised vectors by inner product")
    return manifest


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def describe(index_set: IndexSet) -> str:
    lines = [f"{len(index_set.rows):,} items, {index_set.dim}-d, model {index_set.manifest['model'].get('name')}"]
    for p in index_set.summary():
        recall = "n/a" if p["recall_at_10"] is None else f"{p['recall_at_10']:.3f}"
        lines.append(f"  {p['modality']:<12} {p['count']:>9,}  {p['kind']:<6} agrees with exact search {recall}  "
                     f"{p['bytes_per_vector']:.0f} B/vector in memory")
    lines.append("  (agreement: recall@10 against exact search, with gallery items as held-out queries; it says how "
                 "close the index is to exact search, not how good the model is)")
    return "\n".join(lines)

