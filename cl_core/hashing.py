"""Content digests shared by every stage (the cache keys items by them, the index store checks its files with
them, a model's fingerprint hashes its weight files with them), and the one safe way to open an input file.

`open_regular` opens without blocking and checks the opened file itself: a FIFO, a device (/dev/zero), a socket
or a folder is refused at once with what it is, instead of hanging or reading forever; checking the opened
descriptor (not the path beforehand) leaves no window for the path to be swapped.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import stat
from pathlib import Path

KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def not_regular(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO (named pipe)", ...), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike[str]) -> io.BufferedReader:
    """Open a regular file for reading; OSError (with the reason) for anything else."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        kind = not_regular(os.fstat(fd).st_mode)
        if kind is not None:
            raise OSError(errno.EINVAL, f"is {kind}, not a regular file", str(path))
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return io.open(fd, "rb")  # noqa: UP020 - typed as a BufferedReader (os.fdopen is untyped)
    except BaseException:
        os.close(fd)
        raise


def text_digest(text: str) -> str:
    return hashlib.sha256(b"text\0" + text.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    with open_regular(path) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
