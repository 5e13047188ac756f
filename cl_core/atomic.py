"""Atomic file writes: a crash mid-write leaves the old file or the new one, never a mix."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

# the process umask, read once at import (reading it means setting it, which other threads would see)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Yield a temp file beside `path` opened in `mode`; on success it is closed, fsynced and put over `path`."""
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        yield fh


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `path` (for a library that writes by file name, such as tifffile); on success
    fsync it, os.replace it over `path`, fsync the folder; on failure remove it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        try:
            _chmod_like(fd, target)
        finally:
            os.close(fd)
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)  # fsync is of the file, whichever descriptor asks
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _chmod_like(fd: int, target: Path) -> None:
    """mkstemp makes 0600 files; give the new file the mode of the one it replaces, else the usual 0666 & ~umask."""
    if os.name != "posix":
        return
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_UMASK
    os.fchmod(fd, mode)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)


def save_npy_atomic(path: str | os.PathLike[str], array: np.ndarray) -> None:
    with atomic_write(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
