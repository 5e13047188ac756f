"""The durable embedding cache: embed a collection once, reopen it for free, re-embed what changed.

Keys: the content hash of a file (or text) and the model's fingerprint, so a moved file is still a hit and
a changed file or a different model is a miss. Metadata lives in SQLite (WAL, synchronous=FULL); vectors
in .npy segment files that are memory-mapped on read.

Crash safety (kill -9 at any moment leaves the old or the new state, never a mix): a segment is written
to a temp file, fsynced and renamed into place *before* the SQLite transaction that references it commits.
A crash before the commit leaves an unreferenced segment (removed later as an orphan); a crash during the
commit is rolled back by SQLite's journal. Rows are never updated in place to point at a different file.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from platformdirs import user_cache_dir

from cl_core.atomic import save_npy_atomic
from cl_core.formats import sidecars
from cl_core.hashing import file_sha256, open_regular
from cl_core.modality import Modality

SCHEMA_VERSION = 1
ORPHAN_AGE_S = 3600.0  # an unreferenced segment younger than this may belong to another process's open write


def default_cache_dir() -> Path:
    return Path(os.environ.get("CLENS_CACHE_DIR") or user_cache_dir("contrastive-lens")) / "embeddings"


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def path_key(path: str) -> str:
    """How a file's path is stored: as itself when it is valid UTF-8; a name that is not (bytes the file system
    allows) is stored losslessly as base64 of its bytes, so it neither breaks SQLite nor collides."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return "b64:" + base64.b64encode(os.fsencode(path)).decode("ascii")


@dataclass(frozen=True)
class Record:
    """One embedded item of one file/text: a vector, or the reason it was quarantined."""

    digest: str
    ordinal: int  # which item of the file (a CSV gives one per row)
    modality: Modality
    source_suffix: str  # appended to the entry's source (":12" for a CSV row)
    text: str | None  # the item's text, for text items (shown in results)
    vector: np.ndarray | None
    reason: str | None = None  # set when quarantined


@dataclass(frozen=True)
class Cached:
    ordinal: int
    modality: Modality
    source_suffix: str
    text: str | None
    segment: str | None
    row: int
    reason: str | None


class EmbeddingCache:
    """Thread-safe (one connection behind a lock); several processes may share a folder (SQLite locking)."""

    @staticmethod
    def root_for(root: str | Path | None) -> Path:
        """The folder a cache opened with `root` uses, known without opening it (no database, no scan)."""
        return Path(root) if root is not None else default_cache_dir()

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = self.root_for(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "segments").mkdir(exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.root / "cache.sqlite", timeout=30.0, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._maps: OrderedDict[str, np.ndarray] = OrderedDict()
        self._create()
        self.remove_orphans()

    def _create(self) -> None:
        with self._lock:
            self._db.executescript("""
                BEGIN;
                CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
                CREATE TABLE IF NOT EXISTS file_stats(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,
                                                      ctime_ns INTEGER, inode INTEGER, digest TEXT);
                DROP TABLE IF EXISTS files;
                CREATE TABLE IF NOT EXISTS segments(name TEXT PRIMARY KEY, model TEXT, rows INTEGER, dim INTEGER);
                CREATE TABLE IF NOT EXISTS items(model TEXT, digest TEXT, ordinal INTEGER, modality TEXT,
                                                 suffix TEXT, text TEXT, segment TEXT, row INTEGER, reason TEXT,
                                                 PRIMARY KEY(model, digest, ordinal));
                CREATE TABLE IF NOT EXISTS complete(model TEXT, digest TEXT, count INTEGER,
                                                    PRIMARY KEY(model, digest));
                CREATE TABLE IF NOT EXISTS vouched(key TEXT PRIMARY KEY);
                COMMIT;""")
            got = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if got is None:
                self._db.execute("INSERT INTO meta VALUES('schema', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        with self._lock:
            self._maps.clear()
            self._db.close()

    # ---- content hashes, memoised by (path, size, mtime) -----------------------------------

    def file_digest(self, path: Path) -> str:
        """sha256 of the file; reused while nothing a user can change about it has changed (raises OSError)."""
        got = self.file_digests([path])[0]
        if isinstance(got, OSError):
            raise got
        return got

    def content_digest(self, path: Path) -> str:
        """sha256 of the file's bytes alone (no sidecars), memoised like file_digest: an index reopened
        costs a stat, not a read of its vectors (raises OSError)."""
        got = self.file_digests([path], with_sidecars=False)[0]
        if isinstance(got, OSError):
            raise got
        return got

    def content_digests(self, paths: Sequence[Path]) -> list[str | OSError]:
        """content_digest for many files in one memo lookup (an OSError in place of a file's digest)."""
        return self.file_digests(paths, with_sidecars=False)

    def vouched(self, key: str) -> bool:
        """Whether `key` (a check and the sha256 of the bytes it passed on) was vouched for before."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM vouched WHERE key=?", (key,)).fetchone() is not None

    def vouch(self, key: str) -> None:
        """Remember that the check named in `key` passed on the bytes whose sha256 it names."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO vouched VALUES(?)", (key,))

    def file_digests(self, paths: Sequence[Path], with_sidecars: bool = True) -> list[str | OSError]:
        """file_digest for many files: one memo read per 500 paths and one transaction for what was new,
        not a committed (fsynced) write per file. A file that cannot be read gives its OSError.

        A memoised digest is reused only while size, mtime, ctime and inode are all unchanged: a file rewritten
        with other content and its mtime set back still changes ctime (which no user call can set), and a file
        replaced by another one changes inode, so either is hashed again."""
        paths_ = [str(Path(p).resolve()) for p in paths]
        keys = [path_key(p) for p in paths_]
        where = dict(zip(keys, paths_, strict=True))
        memo: dict[str, tuple[tuple[int, int, int, int], str]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                memo.update((k, ((size, mtime, ctime, inode), d)) for k, size, mtime, ctime, inode, d in self._db.execute(
                    "SELECT path, size, mtime_ns, ctime_ns, inode, digest FROM file_stats WHERE path IN "
                    f"({','.join('?' * len(chunk))})", chunk))
        out: list[str | OSError] = []
        fresh: list[tuple[str, int, int, int, int, str]] = []
        for key in keys:
            try:
                st = _stamp(os.stat(where[key]))
                known = memo.get(key)
                if known is not None and known[0] == st:
                    out.append(known[1])
                    continue
                digest = file_sha256(Path(where[key]))
                after = _stamp(os.stat(where[key]))
                if after != st:  # changed while hashing
                    digest = file_sha256(Path(where[key]))
            except OSError as exc:
                out.append(exc)
                continue
            fresh.append((key, *after, digest))
            out.append(digest)
        if fresh:
            with self._transaction():
                self._db.executemany("INSERT OR REPLACE INTO file_stats VALUES(?,?,?,?,?,?)", fresh)
        if not with_sidecars:
            return out
        return [d if isinstance(d, OSError) else combine_sidecars(where[k], d) for k, d in zip(keys, out, strict=True)]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction under the lock: all of it commits, or none of it (rolled back)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ---- reading -------------------------------------------------------------------------------

    def lookup(self, model: str, digests: Iterable[str]) -> dict[str, list[Cached]]:
        """Every completely cached digest -> its items in ordinal order."""
        wanted = list(dict.fromkeys(digests))
        out: dict[str, list[Cached]] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                marks = ",".join("?" * len(chunk))
                done = {d: n for d, n in self._db.execute(
                    f"SELECT digest, count FROM complete WHERE model=? AND digest IN ({marks})", (model, *chunk))}
                rows = self._db.execute(
                    f"SELECT digest, ordinal, modality, suffix, text, segment, row, reason FROM items "
                    f"WHERE model=? AND digest IN ({marks}) ORDER BY digest, ordinal", (model, *chunk)).fetchall()
                for d, o, m, suffix, text, seg, r, reason in rows:
                    if d in done:
                        out.setdefault(d, []).append(Cached(o, Modality(m), suffix, text, seg, r, reason))
                for d, n in done.items():
                    if len(out.get(d, [])) != n:  # never happens after an atomic put; be safe anyway
                        out.pop(d, None)
        return out

    def vectors(self, cached: Sequence[Cached], dim: int) -> np.ndarray:
        """Gather the vectors of cached items (memory-mapped segments, read once each)."""
        out = np.zeros((len(cached), dim), np.float32)
        by_segment: dict[str, list[int]] = {}
        for i, c in enumerate(cached):
            if c.segment is not None:
                by_segment.setdefault(c.segment, []).append(i)
        for name, idx in by_segment.items():
            data = self._segment(name)
            rows = np.array([cached[i].row for i in idx])
            out[idx] = data[rows]
        return out

    def _segment(self, name: str) -> np.ndarray:
        with self._lock:
            if name in self._maps:
                self._maps.move_to_end(name)
                return self._maps[name]
        data = np.load(self.root / "segments" / name, mmap_mode="r", allow_pickle=False)
        with self._lock:
            self._maps[name] = data
            while len(self._maps) > 64:
                self._maps.popitem(last=False)
        return data

    # ---- writing -------------------------------------------------------------------------------

    def put(self, model: str, records: Sequence[Record], complete: dict[str, int]) -> None:
        """Store records and mark digests complete (with their item count) in one atomic step."""
        good = [r for r in records if r.vector is not None]
        segment = None
        if good:
            segment = f"{model[:16]}-{uuid.uuid4().hex}.npy"
            save_npy_atomic(self.root / "segments" / segment,
                            np.stack([r.vector for r in good if r.vector is not None]).astype(np.float32))
        rows: list[tuple] = []
        k = 0
        for r in records:
            if r.vector is not None:
                rows.append((model, r.digest, r.ordinal, r.modality.value, r.source_suffix, r.text, segment, k, None))
                k += 1
            else:
                rows.append((model, r.digest, r.ordinal, r.modality.value, r.source_suffix, r.text, None, -1,
                             r.reason or "quarantined"))
        with self._transaction():
            if segment is not None:
                self._db.execute("INSERT INTO segments VALUES(?,?,?,?)",
                                 (segment, model, len(good), int(good[0].vector.shape[0])))  # type: ignore[union-attr]
            for digest in complete:  # a file re-embedded in full replaces what was there
                self._db.execute("DELETE FROM items WHERE model=? AND digest=?", (model, digest))
            self._db.executemany("INSERT OR REPLACE INTO items VALUES(?,?,?,?,?,?,?,?,?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO complete VALUES(?,?,?)",
                                 [(model, d, n) for d, n in complete.items()])

    # ---- how big it is, and making it smaller ----------------------------------------------------

    def usage(self) -> dict[str, Any]:
        """Per model fingerprint: items, quarantined rows, segments and their bytes on disk, newest write."""
        with self._lock:
            counts = self._db.execute("SELECT model, COUNT(*), SUM(reason IS NOT NULL) FROM items "
                                      "GROUP BY model").fetchall()
            segments = self._db.execute("SELECT name, model FROM segments").fetchall()
        models: dict[str, dict[str, Any]] = {m: {"items": n, "quarantined": int(q or 0), "segments": 0, "bytes": 0,
                                                 "newest": None} for m, n, q in counts}
        for name, model in segments:
            entry = models.setdefault(model, {"items": 0, "quarantined": 0, "segments": 0, "bytes": 0,
                                              "newest": None})
            try:
                st = (self.root / "segments" / name).stat()
            except OSError:
                continue
            entry["segments"] += 1
            entry["bytes"] += st.st_size
            entry["newest"] = max(entry["newest"] or 0.0, st.st_mtime)
        return {"folder": str(self.root), "models": models,
                "bytes": sum(m["bytes"] for m in models.values())}

    def prune(self, older_than_s: float | None = None, model: str | None = None) -> dict[str, int]:
        """Forget segments written more than `older_than_s` ago and/or those of `model` (a fingerprint or its
        start), with their items, in one transaction; then delete their files (a crash in between leaves
        unreferenced files, removed as orphans later). The files re-embed on next use."""
        now = time.time()
        with self._lock:
            segments = self._db.execute("SELECT name, model FROM segments").fetchall()
        chosen: list[str] = []
        freed = 0
        for name, owner in segments:
            if model is not None and not owner.startswith(model):
                continue
            path = self.root / "segments" / name
            try:
                st = path.stat()
            except OSError:
                st = None
            if older_than_s is not None and st is not None and now - st.st_mtime < older_than_s:
                continue
            chosen.append(name)
            freed += st.st_size if st is not None else 0
        removed_items = 0
        with self._transaction():
            for start in range(0, len(chosen), 500):
                chunk = chosen[start:start + 500]
                marks = ",".join("?" * len(chunk))
                touched = self._db.execute(f"SELECT DISTINCT model, digest FROM items WHERE segment IN ({marks})",
                                           chunk).fetchall()
                self._db.executemany("DELETE FROM complete WHERE model=? AND digest=?", touched)
                removed_items += self._db.execute(f"DELETE FROM items WHERE segment IN ({marks})", chunk).rowcount
                self._db.execute(f"DELETE FROM segments WHERE name IN ({marks})", chunk)
            if model is not None and older_than_s is None:  # the model's quarantine verdicts too
                removed_items += self._db.execute("DELETE FROM items WHERE model LIKE ? AND segment IS NULL",
                                                  (model + "%",)).rowcount
        with self._lock:
            for name in chosen:
                self._maps.pop(name, None)
        for name in chosen:
            (self.root / "segments" / name).unlink(missing_ok=True)
        return {"segments": len(chosen), "items": removed_items, "bytes": freed}

    def remove_orphans(self, min_age_s: float = ORPHAN_AGE_S) -> int:
        """Delete segment files no committed row references (left by a crash before its commit)."""
        with self._lock:
            known = {name for (name,) in self._db.execute("SELECT name FROM segments")}
            used = {name for (name,) in self._db.execute("SELECT DISTINCT segment FROM items WHERE segment IS NOT NULL")}
        removed = 0
        now = time.time()
        for f in (self.root / "segments").iterdir():
            if f.name in known and f.name in used:
                continue
            try:
                if now - f.stat().st_mtime >= min_age_s:
                    f.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        if removed:
            with self._lock:
                self._db.execute("DELETE FROM segments WHERE name NOT IN "
                                 "(SELECT DISTINCT segment FROM items WHERE segment IS NOT NULL)")
        return removed


STACK_SUFFIXES = (".npy", ".tif", ".tiff")  # the files whose channel names may come from a sidecar


def combine_sidecars(path: str, digest: str) -> str:
    """An item's key: its file's digest, combined with the content of the sidecars that name its channels,
    so editing FILE.channels.txt embeds the stack again. Sidecars are a few bytes: read each time."""
    if not path.lower().endswith(STACK_SUFFIXES):
        return digest
    parts = []
    for side in sidecars(path):
        try:
            with open_regular(side) as fh:  # a FIFO named like a sidecar is refused, never waited on
                parts.append(f"{Path(side).name}\0{hashlib.sha256(fh.read(1 << 20)).hexdigest()}")
        except OSError:
            continue
    if not parts:
        return digest
    return hashlib.sha256("\0".join([digest, *parts]).encode()).hexdigest()
