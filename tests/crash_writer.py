"""Writes the cache or an index folder in a loop, printing after each commit; the tests kill it with SIGKILL."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cl_core.embed.cache import EmbeddingCache, Record  # noqa: E402
from cl_core.modality import Modality  # noqa: E402

PER_PUT = 50
DIM = 64


def put_vector(n: int, j: int) -> np.ndarray:
    v = np.random.default_rng(n * 1000 + j).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def index_version(which: int):
    from cl_core.embed.gallery import Row
    from cl_core.search.store import build_index_set

    n = 200 if which == 0 else 300
    vecs = np.random.default_rng(which).standard_normal((n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rows = [Row(i, f"s{i}", f"f{i}.png", Modality.IMAGE) for i in range(n)]
    return build_index_set(rows, vecs, {"fingerprint": "fp", "name": "m"}, {}, "flat")


def main() -> None:
    mode, folder = sys.argv[1], Path(sys.argv[2])
    if mode == "cache":
        cache = EmbeddingCache(folder)
        n = 0
        while True:
            recs = [Record(f"d{n}-{j}", 0, Modality.IMAGE, "", None, put_vector(n, j)) for j in range(PER_PUT)]
            cache.put("model", recs, {f"d{n}-{j}": 1 for j in range(PER_PUT)})
            print(f"ok {n}", flush=True)
            n += 1
    else:
        from cl_core.search.store import save

        versions = [index_version(0), index_version(1)]
        n = 0
        while True:
            save(versions[n % 2], folder)
            print(f"ok {n}", flush=True)
            n += 1


if __name__ == "__main__":
    main()
