"""`clens cache info` and `clens cache prune`: what the cache folder holds, and making it smaller (embedding
caches otherwise grow without bound)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cl_core.actions.checkup import folder_size
from cl_core.embed.cache import EmbeddingCache
from cl_core.errors import ClensError

DERIVED = ("thumbs", "projections", "indexes")  # rebuilt on demand from the embeddings and the files


def cache_info(root: str | Path | None = None) -> dict[str, Any]:
    cache = EmbeddingCache(root)
    try:
        usage = cache.usage()
    finally:
        cache.close()
    usage["derived"] = {name: folder_size(cache.root / name) for name in DERIVED if (cache.root / name).is_dir()}
    return usage


def cache_prune(root: str | Path | None = None, older_than_days: float | None = None,
                model: str | None = None) -> dict[str, Any]:
    """Forget embeddings older than a number of days and/or of one model; thumbnails, maps and indexes older
    than that go too (they are made again when needed)."""
    if older_than_days is None and model is None:
        raise ClensError("say what to prune: --older-than DAYS and/or --model FINGERPRINT")
    if older_than_days is not None and not older_than_days >= 0:
        raise ClensError(f"--older-than must be zero or more days (got {older_than_days})")
    age = None if older_than_days is None else older_than_days * 86_400.0
    cache = EmbeddingCache(root)
    try:
        report: dict[str, Any] = dict(cache.prune(age, model))
    finally:
        cache.close()
    if age is not None:
        now, freed, files = time.time(), 0, 0
        for name in DERIVED:
            for path in (cache.root / name).rglob("*") if (cache.root / name).is_dir() else ():
                try:
                    st = path.stat()
                    if path.is_file() and now - st.st_mtime >= age:
                        path.unlink()
                        freed, files = freed + st.st_size, files + 1
                except OSError:
                    continue
        report["derived_files"], report["derived_bytes"] = files, freed
    return report
