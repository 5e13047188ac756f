"""Gallery embedding on Ray (`clens index build ... --engine ray [--address ADDR]`).

The driver lists the gallery, hashes its files and asks the cache what is already there, exactly as the
local job does; the rest is cut into shards. A pool of Ray actors (one per GPU, or CPU actors) each opens
the checkpoint from its path — its fingerprint checked against the driver's, never a pickled model — and
embeds whole shards with the same decoding, batching and checks as the local job (`embed_shard`). Each
shard's records come back to the driver and are written to the cache atomically as they arrive; the local
job then assembles the gallery from the cache, so the index folder is the one the local job writes, and an
interrupted run resumes without embedding finished shards again. A failed actor's shard is retried by Ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.gallery import ShardResult, embed_shard, entry_digests
from cl_core.embed.sources import Gallery
from cl_core.errors import Cancelled, ClensError, Failure
from cl_core.models.base import BaseModel
from cl_core.models.fingerprint import fingerprint_of
from cl_core.task import TaskState

SHARD_FILES = 256


@dataclass
class RayRun:
    shards: int = 0
    embedded: int = 0
    failures: list[Failure] = field(default_factory=list)
    cancelled: bool = False


class Embedder:
    """One Ray actor: a model opened from its checkpoint path, refusing to run if its fingerprint is not
    the driver's (another file at that path, another version)."""

    def __init__(self, path: str, fingerprint: str, device: str | None, allow_pickle: bool) -> None:
        from cl_core.models.open import open_checkpoint

        self.model = open_checkpoint(path, device=device, allow_pickle=allow_pickle)
        found = fingerprint_of(self.model)
        if found != fingerprint:
            raise ClensError(f"{path}: on this worker the checkpoint's fingerprint is {found}, the driver's "
                             f"{fingerprint}: every machine must see the same checkpoint")

    def embed(self, gallery: Gallery, digests: dict[int, str]) -> ShardResult:
        return embed_shard(self.model, gallery, digests)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClensError("--engine ray needs Ray: pip install 'contrastive-lens[distributed]'") from None
    return ray


def embed_on_ray(model: BaseModel, gallery: Gallery, cache: EmbeddingCache, state: TaskState | None = None,
                 address: str | None = None, actors: int | None = None, device: str | None = None,
                 allow_pickle: bool = False, shard_files: int = SHARD_FILES) -> RayRun:
    """Fill `cache` with every entry of `gallery` not there yet, embedded by Ray actors."""
    ray = _ray()
    state = state or TaskState()
    fingerprint = fingerprint_of(model, cache.file_digest)
    digests, unreadable = entry_digests(gallery, cache, state)
    run = RayRun(failures=list(unreadable))
    hits = cache.lookup(fingerprint, digests.values())
    seen: set[str] = set()
    todo = []
    for i, d in digests.items():
        if d not in hits and d not in seen:
            seen.add(d)
            todo.append(i)
    if not todo:
        return run
    shards = [todo[k:k + shard_files] for k in range(0, len(todo), shard_files)]
    run.shards = len(shards)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 configure_logging=False)
    try:
        gpus = 1 if device == "cuda" else 0
        count = actors or max(1, int(ray.available_resources().get("GPU" if gpus else "CPU", 1)))
        from ray.util import ActorPool
        count = min(count, len(shards))
        remote = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=2, max_task_retries=2)(Embedder)
        pool = ActorPool([remote.remote(str(Path(model.source)), fingerprint, device, allow_pickle)
                                   for _ in range(count)])
        work = [(Gallery(gallery.name, gallery.origin, [gallery.entries[i] for i in shard]),
                 {n: digests[i] for n, i in enumerate(shard)}) for shard in shards]
        done = 0
        for result in pool.map_unordered(lambda actor, job: actor.embed.remote(*job), work):
            cache.put(fingerprint, result.records, result.complete)  # durable shard by shard
            run.embedded += result.embedded
            run.failures += result.failures
            done += 1
            state.set_progress(done, len(shards), f"embedding on Ray: shard {done}/{len(shards)}")
            if state.cancel_requested:
                raise Cancelled("cancelled by the user")
    except Cancelled:
        run.cancelled = True
    except ClensError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray wraps worker errors in its own types
        raise ClensError(f"the Ray job failed: {str(exc).strip().splitlines()[-1][:300]}") from None
    finally:
        if started:
            ray.shutdown()
    return run
