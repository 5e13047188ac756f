"""Killing the Ray driver (`clens index build --engine ray`) mid-run loses nothing finished: the next run skips
the shards already in the cache, and the index equals the local job's. The driver runs in its own process
group with its local Ray, and the whole group gets SIGKILL once the first shard is reported in the cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("ray")

from cl_core import actions  # noqa: E402
from media import make_gallery  # noqa: E402


def _clens(*args: str, **kw) -> subprocess.Popen:  # noqa: ANN003
    env = {**os.environ, "CLENS_DEVICE": "cpu", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.Popen([sys.executable, "-m", "cl_core", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def test_killing_the_driver_mid_run_keeps_finished_shards(native_model, tmp_path):
    gallery = make_gallery(tmp_path / "g", n=6)
    manifest = str(gallery / "manifest.csv")
    cache = tmp_path / "cache"
    args = ["index", "build", str(native_model.source), manifest, "--engine", "ray", "--actors", "1",
            "--shard-files", "4", "--cache", str(cache)]
    first = _clens(*args, "--out", str(tmp_path / "ix1"))
    seen = []
    try:
        assert first.stdout is not None
        for line in first.stdout:  # blocks until the driver says a shard is durable
            seen.append(line.rstrip())
            if "shard 1/5 is in the cache" in line:
                break
        else:
            pytest.fail("the driver ended before a shard was in the cache:\n" + "\n".join(seen[-20:]))
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    second = _clens(*args, "--out", str(tmp_path / "ix2"))
    out, _ = second.communicate(timeout=600)
    os.killpg(second.pid, signal.SIGKILL) if second.poll() is None else None
    assert second.returncode == 0, out
    # 18 entries in shards of 4: the killed run finished at least one, which is not embedded again
    assert "/5 is in the cache" not in out and ("/4 is in the cache" in out or "/3 is in the cache" in out), out
    local = actions.build_index(native_model, manifest, tmp_path / "local", "flat",
                                actions.EmbeddingCache(tmp_path / "cache-local"))
    resumed = actions.read_index(tmp_path / "ix2")
    assert local.index is not None
    assert [r.source for r in resumed.rows] == [r.source for r in local.index.rows]
    np.testing.assert_allclose(np.asarray(resumed.vectors), np.asarray(local.index.vectors), atol=1e-6)
