"""Fitted projections kept on disk, keyed by what they depend on: the gallery's content, the model, the method
and its parameters. Reopening a gallery shows its map at once; the command line reads the same map.

A map is files written atomically: the coordinates (.npy), for PCA its mean and axes as plain arrays (.npz),
and a manifest (.json, written last: the commit point) with the key, the parameters and a sha256 of the other
files; a map whose files do not match is ignored and fitted again. Nothing is pickled: UMAP's and openTSNE's
fitted models live only in the process that fitted them (the window keeps them with the map); where one is
needed to place new points and only the coordinates are cached, the map is fitted again with its seed, which
gives the same map. Coordinates are memory-mapped, so a 1M-point map costs nothing until drawn.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from cl_core.analysis.projection import Projection, check_params
from cl_core.atomic import atomic_write, write_text_atomic
from cl_core.hashing import file_sha256

VERSION = 1


def projection_key(gallery_key: str, model_fingerprint: str, method: str, params: dict[str, Any]) -> str:
    blob = json.dumps([VERSION, gallery_key, model_fingerprint, method, check_params(method, params)],
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def save(folder: Path, key: str, projection: Projection, rows: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    buf = io.BytesIO()
    np.save(buf, projection.coords.astype(np.float32), allow_pickle=False)
    _put(folder / f"{key}.coords.npy", buf.getvalue(), files)
    if projection.method == "pca":
        mean, components = projection.fitted
        buf = io.BytesIO()
        np.savez(buf, mean=mean, components=components)
        _put(folder / f"{key}.pca.npz", buf.getvalue(), files)
    manifest = {"version": VERSION, "key": key, "method": projection.method, "params": projection.params,
                "rows": rows, "seconds": round(projection.seconds, 3), "files": files}
    write_text_atomic(folder / f"{key}.json", json.dumps(manifest, indent=2))  # the commit point


def _put(path: Path, blob: bytes, files: dict[str, str]) -> None:
    with atomic_write(path) as fh:
        fh.write(blob)
    files[path.name] = hashlib.sha256(blob).hexdigest()


def load(folder: Path, key: str, rows: int) -> Projection | None:
    """The cached map, or None when there is none, or it does not match (rows, digests)."""
    path = folder / f"{key}.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("version") != VERSION or manifest.get("key") != key or manifest.get("rows") != rows:
            return None
        files = manifest["files"]
        for name, digest in files.items():
            if Path(name).name != name or file_sha256(folder / name) != digest:
                return None
        coords = np.load(folder / f"{key}.coords.npy", mmap_mode="r", allow_pickle=False)
        if coords.shape != (rows, 2) or coords.dtype != np.float32:
            return None
        fitted: Any = None
        if f"{key}.pca.npz" in files:
            with np.load(folder / f"{key}.pca.npz", allow_pickle=False) as z:
                fitted = (z["mean"], z["components"])
        return Projection(manifest["method"], manifest["params"], coords, fitted, float(manifest.get("seconds", 0)))
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError, EOFError):
        return None
