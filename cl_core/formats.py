"""File names and suffixes that several stages must agree on, written once.

Which file makes a folder a checkpoint of which format, the weight suffixes (safe and pickled), and the
names a native checkpoint and its training run write. Detection, loading, fingerprinting, the trainer,
the demos and the window all read them from here.
"""

from __future__ import annotations

NATIVE_CONFIG = "clens_config.json"
NATIVE_WEIGHTS = "model.safetensors"
OPENCLIP_CONFIG = "open_clip_config.json"
OPENCLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
HF_CONFIG = "config.json"
# the config file that marks a checkpoint folder, in the order they are tried
CONFIG_FILES = {NATIVE_CONFIG: "native", OPENCLIP_CONFIG: "open_clip", HF_CONFIG: "huggingface"}

SAFETENSORS_SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")  # only ever loaded with weights_only=True
WEIGHT_SUFFIXES = (SAFETENSORS_SUFFIX, *PICKLE_SUFFIXES)

MODEL_CARD_JSON = "model_card.json"
MODEL_CARD_MD = "MODEL_CARD.md"
TRAIN_STATE = "train_state.pt"  # resumable training state: not part of the model (not fingerprinted)

# a channel stack's names can sit beside it (FILE.channels.json, a list, or FILE.channels.txt, one per line):
# part of the item, so part of its cache key, and never an item of its own
SIDECAR_SUFFIXES = (".channels.json", ".channels.txt")


def sidecars(path: str) -> list[str]:
    """The sidecar files a stack at `path` may have (whether or not they exist)."""
    return [path + s for s in SIDECAR_SUFFIXES]
