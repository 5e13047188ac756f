"""A reader that dies like a native decoder crash on files named crash*; imported inside decoder workers."""

from __future__ import annotations

import os
from pathlib import Path

from cl_core.readers import read_path


def read(path, modality, limits):
    if Path(path).name.startswith("crash"):
        os.abort()  # SIGABRT: the process dies with no Python exception, as a segfaulting decoder would
    return read_path(path, modality, limits)
