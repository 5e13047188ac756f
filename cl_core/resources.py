"""Where bundled resources live: the installed data package `clens_resources` (a wheel, a bundle), else the
repository's resources/ folder next to the packages (a source checkout). Found with importlib.resources, so it
works wherever the package is installed, not only beside the source tree."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _root() -> Path:
    try:
        found = Path(str(files("clens_resources")))
    except ModuleNotFoundError:
        found = Path()
    if (found / "vocab").is_dir():
        return found
    return Path(__file__).resolve().parent.parent / "resources"


RESOURCES = _root()
CLIP_BPE_VOCAB = RESOURCES / "vocab" / "bpe_simple_vocab_16e6.txt.gz"
