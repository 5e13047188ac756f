"""kill -9 during saves of the cache and of an index folder: what loads is the old or the new state, never a mix."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import crash_writer
import numpy as np

from cl_core.embed.cache import EmbeddingCache
from cl_core.search.store import load

KILLS = 6


def run_and_kill(mode: str, folder: Path, after: int) -> int:
    """Start the writer, wait for `after` commits (reading its output, no sleeps), SIGKILL it mid-stream."""
    proc = subprocess.Popen([sys.executable, str(Path(crash_writer.__file__)), mode, str(folder)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    last = -1
    for line in proc.stdout:
        last = int(line.split()[1])
        if last >= after:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    return last


def test_cache_survives_kill_9_during_writes(tmp_path):
    rng = random.Random(7)
    folder = tmp_path / "cache"
    seen = -1
    for _ in range(KILLS):
        seen = max(seen, run_and_kill("cache", folder, seen + 1 + rng.randint(0, 3)))
        cache = EmbeddingCache(folder)
        upto = seen + 3
        digests = [f"d{n}-{j}" for n in range(upto) for j in range(crash_writer.PER_PUT)]
        found = cache.lookup("model", digests)
        for n in range(upto):
            put = [f"d{n}-{j}" for j in range(crash_writer.PER_PUT)]
            present = [d in found for d in put]
            assert all(present) or not any(present), f"put {n} is half there"
            if n <= seen:
                assert all(present), f"committed put {n} was lost"
            if all(present):
                got = cache.vectors([found[d][0] for d in put], crash_writer.DIM)
                want = np.stack([crash_writer.put_vector(n, j) for j in range(crash_writer.PER_PUT)])
                np.testing.assert_array_equal(got, want)
        cache.close()


def test_index_folder_survives_kill_9_during_saves(tmp_path):
    rng = random.Random(11)
    folder = tmp_path / "index"
    versions = {200: crash_writer.index_version(0), 300: crash_writer.index_version(1)}
    seen = -1
    for _ in range(KILLS):
        seen = max(seen, run_and_kill("index", folder, seen + 1 + rng.randint(0, 2)))
        loaded = load(folder)
        want = versions[len(loaded.rows)]  # exactly one of the two versions, by its size...
        np.testing.assert_array_equal(np.asarray(loaded.vectors), want.vectors)  # ...and all of it
        assert loaded.parts[next(iter(loaded.parts))].built.index.ntotal == len(want.rows)
        names = {p.name for p in folder.iterdir()}
        assert set(loaded.manifest["files"]) <= names


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    """A new file gets 0666 minus the umask (not mkstemp's 0600); a replaced file keeps its mode."""
    if os.name != "posix":
        return
    from cl_core.atomic import _UMASK, write_text_atomic

    fresh = tmp_path / "card.json"
    write_text_atomic(fresh, "{}")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~_UMASK
    shared = tmp_path / "shared.json"
    shared.write_text("old")
    shared.chmod(0o640)
    write_text_atomic(shared, "new")
    assert shared.read_text() == "new" and shared.stat().st_mode & 0o777 == 0o640
