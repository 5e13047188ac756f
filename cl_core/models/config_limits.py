"""Checkpoint configs are untrusted input: read them with a size and depth limit, and refuse numbers that
would make the model allocate absurd memory *before* anything is built (an image size of 200,000 asks for
gigabytes of position embeddings; a context length of 10^9 for a gigantic table).

Every integer whose key names a size is checked against a range generous enough for any real model; the
message names the file, the key's path and the range.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cl_core.errors import CheckpointError

MAX_CONFIG_BYTES = 8 * 1024**2
MAX_DEPTH = 32
# (key fragments, lowest, highest): the first entry with a fragment in the key's name applies, so the specific
# names come before the general ones; a key named exactly "size" (an image processor's) is an image size
RANGES: tuple[tuple[tuple[str, ...], int, int], ...] = (
    (("sample_rate", "sampling_rate"), 1_000, 384_000),
    (("vocab_size", "context_length", "max_position_embeddings", "max_length"), 1, 1_000_000),
    (("n_fft", "hop", "win_length", "window_size", "fft_window_size"), 1, 1_048_576),
    (("image_size", "crop_size", "shortest_edge", "longest_edge", "img_size"), 1, 4_096),
    (("patch",), 1, 1_024),
    (("layers", "depth"), 0, 256),
    (("heads",), 1, 1_024),
    (("n_mels", "num_mel_bins", "mel_bins"), 1, 1_024),
    (("channels",), 1, 4_096),
    (("width", "hidden_size", "intermediate_size", "embed_dim", "projection_dim", "hidden_dim", "dim"), 1, 65_536),
)
EXACT = {"size": (1, 4_096), "height": (1, 4_096)}


def read_config(path: Path, what: str = "config") -> dict[str, Any]:
    """A JSON object from `path`, bounded in bytes and nesting, with every size checked."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise CheckpointError(f"{path}: {size:,} bytes is too large for a {what} (limit {MAX_CONFIG_BYTES:,})")
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable {what}: {exc}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: the {what} is nested too deeply to be a config") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: the {what} is not a JSON object")
    check_config(data, str(path))
    return data


def check_config(data: Any, where: str, trail: str = "", depth: int = 0) -> None:
    """Refuse a size-like integer outside its range, or nesting deeper than MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise CheckpointError(f"{where}: nested more than {MAX_DEPTH} levels deep at {trail or 'the top'}")
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        path = f"{trail}.{key}" if trail else str(key)
        if isinstance(value, dict | list):
            check_config(value, where, path, depth + 1)
            continue
        name = str(key).lower() if isinstance(key, str) else trail.rsplit(".", 1)[-1].lower()
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        bounds = EXACT.get(name) or next(((low, high) for fragments, low, high in RANGES
                                          if any(f in name for f in fragments)), None)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise CheckpointError(f"{where}: {path} = {value} is outside {bounds[0]:,}..{bounds[1]:,}; "
                                  "a real checkpoint never asks for that (refused before allocating)")
