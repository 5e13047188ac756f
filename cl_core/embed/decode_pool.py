"""Decode files in worker processes, so a native decoder crash (a segfault in an image or audio library)
costs one file and one worker, never the app.

Workers are spawned (never forked: the parent has torch and Qt threads). When a worker dies, the pool is
rebuilt and the files it had not finished are retried one at a time, so the crash is pinned on the file
that caused it; every other file is still read.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from cl_core.embed.preparation import ItemOutcome, Preparation
from cl_core.embed.worker import read_in_worker, warm_up, watch_parent
from cl_core.errors import ReaderError
from cl_core.modality import Item, Modality
from cl_core.readers import ReadLimits
from cl_core.task import TaskState

DEFAULT_READER = "cl_core.readers:read_path"
Outcome = tuple[list[Item], ReaderError | None]
# with a Preparation: per item, prepared arrays, a reason it failed, or None (see cl_core.embed.preparation)
PreparedOutcome = tuple[list[Item], ReaderError | None, list[ItemOutcome] | None]


def outcome(result: tuple[list[Item], tuple[str, str] | None, list[ItemOutcome] | None]) -> PreparedOutcome:
    """A worker's plain-data answer (`read_in_worker`) as the parent uses it: the error as a ReaderError."""
    got, error, prepared = result
    return got, ReaderError(*error) if error else None, prepared


class DecodePool:
    """A lazily started pool of decoder processes, kept alive across calls; results keep input order."""

    def __init__(self, workers: int | None = None, reader: str = DEFAULT_READER) -> None:
        # default: one core left to the model's forward pass, at least 2 and at most 8 decoders
        self.workers = max(1, workers) if workers is not None else max(2, min(8, (os.cpu_count() or 2) - 1))
        self.reader = reader  # importable "module:function" with read_path's signature
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._warmed = False

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:  # jobs on several threads share one pool
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                                 initializer=watch_parent, initargs=(os.getpid(),))
            return self._pool

    def warm(self) -> None:
        """Start every worker now (spawning one imports torch: seconds), so the next file decodes at once.
        Returns immediately; the workers come up in the background. Once per pool."""
        if self._warmed:
            return
        self._warmed = True
        pool = self._executor()
        for _ in range(self.workers):
            pool.submit(warm_up, self.reader)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self._warmed = False
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_many(self, paths: Sequence[Path], modality: Modality | None, limits: ReadLimits,
                  state: TaskState | None = None) -> list[Outcome]:
        """One outcome per path, in order: (items, None) or ([], ReaderError)."""
        outcomes: list[Outcome] = []
        for i, outcome in self.stream(paths, modality, limits, state):
            outcomes.append(outcome)
            if state is not None:
                state.set_progress(i + 1, len(paths), f"reading {Path(paths[i]).name}")
        return outcomes

    def stream(self, paths: Sequence[Path], modality: Modality | None, limits: ReadLimits,
               state: TaskState | None = None, window: int | None = None) -> Iterator[tuple[int, Outcome]]:
        """Yield (index, outcome) in input order while up to `window` later files decode in the workers,
        so decoding overlaps with whatever the caller does between items (e.g. a model forward)."""
        for i, (items, error, _) in self.stream_prepared(paths, [modality] * len(paths), limits, None, state, window):
            yield i, (items, error)

    def stream_prepared(self, paths: Sequence[Path], modalities: Sequence[Modality | None], limits: ReadLimits,
                        preparation: Preparation | None, state: TaskState | None = None,
                        window: int | None = None) -> Iterator[tuple[int, PreparedOutcome]]:
        """As `stream`, with a declared modality per path; with a preparation, the workers also fit and
        preprocess each item for the model."""
        window = window or self.workers * 8
        inflight: deque[tuple[int, Future]] = deque()
        retry: deque[int] = deque()  # after a crash: files re-read one at a time to pin the crash
        next_i = 0
        try:
            while next_i < len(paths) or inflight or retry:
                if state is not None:
                    state.check_cancelled()
                if retry:
                    i = retry.popleft()
                    yield i, self._read_alone(paths[i], modalities[i], limits, preparation)
                    continue
                while len(inflight) < window and next_i < len(paths):
                    inflight.append((next_i, self._submit(paths[next_i], modalities[next_i], limits, preparation)))
                    next_i += 1
                i, fut = inflight.popleft()
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    self.close()
                    retry.extend([i, *(j for j, _ in inflight)])
                    inflight.clear()
                    continue
                yield i, outcome(result)
        finally:
            for _, fut in inflight:
                fut.cancel()

    def calls(self, fn: Callable[..., Any], arguments: Sequence[tuple[Any, ...]],
              state: TaskState | None = None) -> Iterator[tuple[int, Any]]:
        """Run `fn(*args)` for each argument tuple in the workers; yield (index, result) as each finishes,
        or (index, "...crashed...") for a call whose worker died (the pool is rebuilt, the rest go on)."""
        pending = dict(enumerate(arguments))
        while pending:
            futures = {self._executor().submit(fn, *args): i for i, args in pending.items()}
            try:
                for fut in as_completed(futures):
                    if state is not None and state.cancel_requested:
                        for f in futures:
                            f.cancel()
                        state.check_cancelled()
                    i = futures[fut]
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        raise
                    except Exception as exc:  # noqa: BLE001 - one call's failure is that call's result
                        result = f"{type(exc).__name__}: {exc}"
                    pending.pop(i, None)
                    yield i, result
            except BrokenProcessPool:
                self.close()
                crashed = min(pending)  # unknown which one: the earliest pending is retried alone first
                args = pending.pop(crashed)
                try:
                    yield crashed, self._executor().submit(fn, *args).result()
                except BrokenProcessPool:
                    self.close()
                    yield crashed, "the worker crashed on this file (its process died)"

    def _submit(self, path: Path, modality: Modality | None, limits: ReadLimits,
                preparation: Preparation | None) -> Future:
        return self._executor().submit(read_in_worker, self.reader, str(path), modality, limits, preparation)

    def _read_alone(self, path: Path, modality: Modality | None, limits: ReadLimits,
                    preparation: Preparation | None) -> PreparedOutcome:
        try:
            result = self._submit(path, modality, limits, preparation).result()
        except BrokenProcessPool:
            self.close()
            return [], ReaderError(str(path), "the decoder crashed on this file (its worker process died)"), None
        return outcome(result)
