"""`clens doctor`: what a user pastes into a bug report — versions and builds, devices and their memory, the
Qt platform and the system libraries it needs, the cache folder and its size, what is missing and the command
that fixes it. Reads only; imports nothing of Qt (versions come from the installed packages' metadata)."""

from __future__ import annotations

import ctypes.util
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("contrastive-lens", "torch", "PySide6-Essentials", "PySide6-Addons", "pyqtgraph", "faiss-cpu",
            "faiss-gpu", "numpy", "transformers", "tokenizers", "safetensors", "pillow", "soundfile", "tifffile",
            "umap-learn", "openTSNE", "psygnal", "sentencepiece", "protobuf")
# optional packages: what each is for, and how to get it
OPTIONAL = {"sentencepiece": ("SigLIP tokenizers", "pip install sentencepiece protobuf"),
            "protobuf": ("SigLIP tokenizers", "pip install sentencepiece protobuf")}
# shared libraries the window needs on Linux (Debian package names in the fix)
SYSTEM_LIBS = {"GL": "libgl1", "EGL": "libegl1", "xkbcommon-x11": "libxkbcommon-x11-0",
               "xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1",
               "fontconfig": "libfontconfig1", "dbus-1": "libdbus-1-3", "pulse": "libpulse0"}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _devices() -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {"torch_build": "cuda " + torch.version.cuda if torch.version.cuda
                           else "rocm " + str(getattr(torch.version, "hip", None)) if getattr(torch.version, "hip", None)
                           else "cpu", "cpu_threads": torch.get_num_threads(), "cuda": []}
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out["cuda"].append({"index": i, "name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                                "capability": f"{props.major}.{props.minor}"})
    out["mps"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return out


def folder_size(folder: Path) -> int:
    total = 0
    for root, _dirs, names in os.walk(folder):
        for n in names:
            try:
                total += os.lstat(os.path.join(root, n)).st_size
            except OSError:
                continue
    return total


def doctor(cache_root: str | Path | None = None) -> dict[str, Any]:
    from cl_core.embed.cache import default_cache_dir

    versions = {name: _version(name) for name in PACKAGES}
    cache = Path(cache_root) if cache_root is not None else default_cache_dir().parent
    missing = []
    for name, (why, fix) in OPTIONAL.items():
        if versions.get(name) is None:
            missing.append({"what": name, "for": why, "fix": fix})
    if sys.platform.startswith("linux"):
        for lib, package in SYSTEM_LIBS.items():
            if ctypes.util.find_library(lib) is None:
                missing.append({"what": f"lib{lib}", "for": "the window" if lib != "pulse" else "audio playback",
                                "fix": f"sudo apt-get install {package}"})
    display = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")
    return {
        "python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
        "packages": versions, "devices": _devices(),
        "qt": {"QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM"), "display": display,
               "note": None if display or os.environ.get("QT_QPA_PLATFORM") else
               "no display: the window needs one (or QT_QPA_PLATFORM=offscreen for screenshots)"},
        "cache": {"folder": str(cache), "bytes": folder_size(cache) if cache.is_dir() else 0},
        "missing": missing,
    }
