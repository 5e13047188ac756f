"""Thumbnails for the results grid: drawn in decoder processes (a crashing decoder costs one picture, never
the app) and kept on disk by file content and size, so scrolling is smooth and reopening is instant."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DecodePool
from cl_core.readers.thumbnail import write_thumbnail
from cl_core.task import TaskState


def thumbnails(paths: Sequence[str | Path], cache: EmbeddingCache, size: int = 128,
               state: TaskState | None = None, pool: DecodePool | None = None) -> dict[str, Path | str]:
    """For each file: the path of its thumbnail PNG, or why it has none."""
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
        target = folder / f"{digest}-{size}.png"
        if target.is_file():
            out[str(path)] = target
        else:
            todo.append((str(path), target))
    if todo:
        own = pool is None
        pool = pool or DecodePool()
        try:
            done = 0
            for i, error in pool.calls(write_thumbnail, [(p, size, str(t)) for p, t in todo], state):
                source, thumb = todo[i]
                out[source] = error if error else thumb
                done += 1
                state.set_progress(done, len(todo), "drawing thumbnails")
        finally:
            if own:
                pool.close()
    return out
