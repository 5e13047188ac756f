"""The Ray engine on a local Ray (2 CPUs): the same vectors and failures as the local job, merged through the
cache into the same index; an interrupted run resumes without embedding finished shards again."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from cl_core import actions  # noqa: E402
from cl_core.task import TaskState  # noqa: E402
from media import make_gallery  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    from pathlib import Path

    here = str(Path(__file__).parent)  # so workers can import tests/crash_reader.py
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": here}})
    yield
    ray.shutdown()


def test_ray_and_local_jobs_give_the_same_index(local_ray, native_model, media_dir, tmp_path):
    import shutil

    gallery = make_gallery(tmp_path / "g", n=5)
    shutil.copy(media_dir / "truncated.png", gallery / "bad.png")
    manifest = gallery / "manifest.csv"
    manifest.write_text(manifest.read_text() + "bad,bad.png,,,cat,site0,0.0\n", encoding="utf-8")
    local = actions.build_index(native_model, manifest, tmp_path / "local", "flat",
                                actions.EmbeddingCache(tmp_path / "cache-local"))
    on_ray = actions.build_index(native_model, manifest, tmp_path / "ray", "flat",
                                 actions.EmbeddingCache(tmp_path / "cache-ray"), engine="ray", actors=2)
    assert on_ray.index is not None and local.index is not None
    assert on_ray.embedding.embedded == 0  # everything came from the cache the Ray actors filled
    assert [r.source for r in on_ray.index.rows] == [r.source for r in local.index.rows]
    # the same model and preprocessing in every process; batches differ, and rows do not depend on their batch
    np.testing.assert_allclose(np.asarray(on_ray.index.vectors), np.asarray(local.index.vectors), atol=1e-6)
    assert sorted(f.source for f in on_ray.embedding.failures) == sorted(f.source for f in local.embedding.failures)
    assert any(f.source.endswith("bad.png") for f in on_ray.embedding.failures)


def test_an_interrupted_ray_run_resumes_from_the_finished_shards(local_ray, native_model, tmp_path, monkeypatch):
    from cl_core.embed import distributed

    gallery = make_gallery(tmp_path / "g", n=6)
    cache = actions.EmbeddingCache(tmp_path / "cache")
    source = actions.embed_source.__globals__["open_source"](gallery / "manifest.csv")
    state = TaskState()
    seen = []

    def stop_after_first(p):  # noqa: ANN001 - a Progress
        if p.text.startswith("embedding on Ray"):  # after the first shard is in the cache
            seen.append(p.done)
            state.cancel()

    state._on_progress = stop_after_first
    first = distributed.embed_on_ray(native_model, source, cache, state, actors=1, shard_files=4)
    assert first.cancelled and first.shards == 5 and seen[-1] == 1  # 18 entries in shards of 4: one done
    again = distributed.embed_on_ray(native_model, source, cache, actors=2, shard_files=4)
    assert not again.cancelled and again.shards == 4  # the finished shard is not embedded again
    assert again.read_tasks == 4  # each shard's files read once, in a Ray task ahead of the actors
    built = actions.build_index(native_model, gallery / "manifest.csv", tmp_path / "ix", "flat", cache)
    assert built.embedding.embedded == 0 and len(built.index.rows) == 18


def test_a_file_that_kills_its_reader_fails_its_shard_and_the_job_goes_on(local_ray, native_model, tmp_path):
    """Ray Data retries a lost task without end by default; here a shard whose reader process dies every time
    (SIGABRT, as a crashing native decoder) is retried a bounded number of times, its files listed as failures,
    and the other shards are embedded and cached."""
    from cl_core.embed import distributed

    gallery = make_gallery(tmp_path / "g", n=4)  # 12 entries
    (gallery / "crash.png").write_bytes(next(gallery.glob("*.png")).read_bytes() + b"unique")  # not a duplicate
    manifest = gallery / "manifest.csv"
    manifest.write_text(manifest.read_text() + "crash,crash.png,,,cat,site0,0.0\n", encoding="utf-8")
    source = actions.embed_source.__globals__["open_source"](manifest)
    cache = actions.EmbeddingCache(tmp_path / "cache")
    run = distributed.embed_on_ray(native_model, source, cache, actors=1, shard_files=4,
                                   reader="crash_reader:read")
    crashed = [f for f in run.failures if f.stage == "job"]
    assert any(f.source.endswith("crash.png") for f in crashed) and len(crashed) <= 4  # only the crash's shard
    assert run.embedded == 13 - len(crashed)  # every other shard embedded (and cached)
    again = distributed.embed_on_ray(native_model, source, cache, actors=1, shard_files=4)
    assert again.shards == 1 and not [f for f in again.failures if f.stage == "job"]  # only that shard again
