"""Thumbnails for the results grid: drawn in decoder processes (a crashing decoder costs one picture, never
the app) and kept on disk by file content and size, so scrolling is smooth and reopening is instant. Those
already on disk, then each batch drawn, are handed on early (`state.partial`): a grid of 1,000 fills as
they come instead of after the last one."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DecodePool
from cl_core.readers.thumbnail import write_thumbnail
from cl_core.task import TaskState

PARTIAL_EVERY_S = 0.25  # how often drawn thumbnails are handed on while the rest are drawn


def thumbnails(paths: Sequence[str | Path], cache: EmbeddingCache, size: int = 128,
               state: TaskState | None = None, pool: DecodePool | None = None,
               channels: Mapping[str, Sequence[str]] | None = None) -> dict[str, Path | str]:
    """For each file: the path of its thumbnail PNG, or why it has none. `channels`: for some files (channel
    stacks), the channel names shown as red, green and blue; each choice is cached on its own."""
    channels = channels or {}
    state = state or TaskState()
    folder = Path(cache.root) / "thumbs"
    folder.mkdir(parents=True, exist_ok=True)
    files = [Path(p) for p in paths]
    digests = cache.file_digests(files)
    out: dict[str, Path | str] = {}
    todo: list[tuple[str, Path]] = []
    for path, digest in zip(files, digests, strict=True):
        if isinstance(digest, OSError):
            out[str(path)] = f"cannot open: {digest.strerror or digest}"
            continue
        chosen = channels.get(str(path))
        key = "" if not chosen else "-" + hashlib.sha1("\0".join(chosen).encode("utf-8", "surrogatepass")).hexdigest()[:10]
        target = folder / f"{digest}-{size}{key}.png"
        if target.is_file():
            out[str(path)] = target
        else:
            todo.append((str(path), target))
    if out:
        state.partial(dict(out))
    if todo:
        own = pool is None
        pool = pool or DecodePool()
        try:
            done = 0
            fresh: dict[str, Path | str] = {}
            last = time.monotonic()
            calls = [(p, size, str(t), tuple(channels[p]) if channels.get(p) else None) for p, t in todo]
            for i, error in pool.calls(write_thumbnail, calls, state):
                source, thumb = todo[i]
                out[source] = fresh[source] = error if error else thumb
                done += 1
                state.set_progress(done, len(todo), "drawing thumbnails")
                if time.monotonic() - last >= PARTIAL_EVERY_S:
                    state.partial(fresh)
                    fresh, last = {}, time.monotonic()
        finally:
            if own:
                pool.close()
    return out
