"""Content digests shared by every stage: the cache keys items by them, the index store checks its files
with them, a model's fingerprint hashes its weight files with them."""

from __future__ import annotations

import hashlib
from pathlib import Path


def text_digest(text: str) -> str:
    return hashlib.sha256(b"text\0" + text.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
