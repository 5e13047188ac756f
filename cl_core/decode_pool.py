"""Decode files in worker processes, so a native decoder crash (a segfault in an image or audio library)
costs one file and one worker, never the app.

Workers are spawned (never forked: the parent has torch and Qt threads). When a worker dies, the pool is
rebuilt and the files it had not finished are retried one at a time, so the crash is pinned on the file
that caused it; every other file is still read.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from cl_core.errors import ReaderError
from cl_core.modality import Item, Modality
from cl_core.readers import ReadLimits
from cl_core.task import TaskState

DEFAULT_READER = "cl_core.readers:read_path"
Outcome = tuple[list[Item], ReaderError | None]


def _resolve(reader: str) -> Callable[..., list[Item]]:
    module, _, name = reader.partition(":")
    return getattr(importlib.import_module(module), name)


def _read_in_worker(reader: str, path: str, modality: Modality | None,
                    limits: ReadLimits) -> tuple[list[Item], tuple[str, str] | None]:
    """Runs in the worker: plain data back, so nothing the parent unpickles can break the pool."""
    try:
        return _resolve(reader)(path, modality, limits), None
    except ReaderError as exc:
        return [], (exc.source, exc.reason)


class DecodePool:
    """A lazily started pool of decoder processes; `read_many` keeps input order."""

    def __init__(self, workers: int = 2, reader: str = DEFAULT_READER) -> None:
        self.workers = max(1, workers)
        self.reader = reader  # importable "module:function" with read_path's signature
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_many(self, paths: Sequence[Path], modality: Modality | None, limits: ReadLimits,
                  state: TaskState | None = None) -> list[Outcome]:
        """One outcome per path, in order: (items, None) or ([], ReaderError)."""
        outcomes: dict[int, Outcome] = {}
        pending = list(range(len(paths)))
        one_by_one = False  # after a crash, files go one at a time so the next crash names its file
        while pending:
            batch = pending[:1] if one_by_one else pending
            futures: dict[int, Future] = {i: self._executor().submit(
                _read_in_worker, self.reader, str(paths[i]), modality, limits) for i in batch}
            broke = False
            for i in batch:
                if state is not None and state.cancel_requested:
                    for f in futures.values():
                        f.cancel()
                    state.check_cancelled()
                try:
                    got, error = futures[i].result()
                    outcomes[i] = (got, ReaderError(*error) if error else None)
                except BrokenProcessPool:
                    broke = True
                if state is not None:
                    state.set_progress(len(outcomes), len(paths), f"reading {Path(paths[i]).name}")
            if broke:
                self.close()
                if len(batch) == 1:
                    outcomes[batch[0]] = ([], ReaderError(
                        str(paths[batch[0]]), "the decoder crashed on this file (its worker process died)"))
                one_by_one = True
            pending = [i for i in pending if i not in outcomes]
        return [outcomes[i] for i in range(len(paths))]
