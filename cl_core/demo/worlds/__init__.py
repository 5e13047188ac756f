"""Generated demo worlds with known ground truth, used to train and check the bundled demo models."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
PARALLEL_FROM = 2000  # below this many samples, starting worker processes costs more than it saves
CHUNK = 500  # samples per task sent to a worker


def _chunk(make: Callable[..., T], seed: int, start: int, stop: int, kwargs: dict[str, Any]) -> list[T]:
    return [make(seed, i, **kwargs) for i in range(start, stop)]


def generate(make: Callable[..., T], seed: int, count: int, workers: int | None = None, **kwargs: Any) -> list[T]:
    """[make(seed, i, **kwargs) for i in range(count)], in worker processes for large worlds.

    Every sample is a pure function of (seed, index), so the result is the same however it is split.
    """
    workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    if workers <= 1 or count < PARALLEL_FROM:
        return _chunk(make, seed, 0, count, kwargs)
    bounds = list(range(0, count, CHUNK)) + [count]
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(functools.partial(_chunk, make, seed, kwargs=kwargs), bounds[:-1], bounds[1:])
        return [s for part in parts for s in part]
