"""Where bundled resources live (the repository's resources/ folder, next to the packages)."""

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
CLIP_BPE_VOCAB = RESOURCES / "vocab" / "bpe_simple_vocab_16e6.txt.gz"
