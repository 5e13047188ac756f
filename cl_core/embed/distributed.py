"""Gallery embedding on Ray (`clens index build ... --engine ray [--address ADDR]`).

The driver lists the gallery, hashes its files and asks the cache what is already there, exactly as the
local job does; the rest is cut into shards. Each shard's files are read and prepared in a Ray task with the
weight-free preparation the local decoder pool uses (`decode_files`), a window of shards ahead of the model; a
pool of Ray actors (one per GPU, or CPU actors) each opens the checkpoint from its path — its fingerprint
checked against the driver's, never a pickled model — and embeds whole shards from what the tasks read, with
the same batching and checks as the local job (`embed_shard`). Each
shard's records come back to the driver and are written to the cache atomically as they arrive; the local
job then assembles the gallery from the cache, so the index folder is the one the local job writes, and an
interrupted run resumes without embedding finished shards again. A failed actor's shard is retried by Ray.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DEFAULT_READER, PreparedOutcome
from cl_core.embed.gallery import ShardResult, decode_files, embed_shard, entry_digests
from cl_core.embed.preparation import Preparation
from cl_core.embed.sources import Gallery
from cl_core.errors import Cancelled, ClensError, Failure
from cl_core.modality import Modality
from cl_core.models.base import BaseModel
from cl_core.models.fingerprint import fingerprint_of
from cl_core.readers import ReadLimits
from cl_core.task import TaskState

SHARD_FILES = 256
RETRIES = 2  # reruns of a read task lost with its worker, restarts of a dead model actor


@dataclass
class RayRun:
    shards: int = 0
    read_tasks: int = 0  # shards whose files were read in Ray tasks
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

    def embed(self, gallery: Gallery, digests: dict[int, str], decoded: list[PreparedOutcome]) -> ShardResult:
        return embed_shard(self.model, gallery, digests, decoded=decoded)


def _read(row: dict[str, Any], preparation: Preparation, limits: ReadLimits, reader: str) -> dict[str, Any]:
    """Ray Data stage 1 (tasks): read and prepare one shard's files, as a local decoder worker does."""
    modalities = [Modality(m) if m else None for m in row["modalities"]]
    decoded = decode_files([Path(p) for p in row["paths"]], modalities, limits, preparation, reader)
    return {"k": row["k"], "decoded": decoded}


class _Embed(Embedder):
    """Ray Data stage 2 (a pool of actors): embed a read shard with the model opened once per actor."""

    def __init__(self, work: list[tuple[Gallery, dict[int, str]]], path: str, fingerprint: str,
                 device: str | None, allow_pickle: bool) -> None:
        super().__init__(path, fingerprint, device, allow_pickle)
        self.work = work

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        gallery, digests = self.work[row["k"]]
        return {"k": row["k"], "result": self.embed(gallery, digests, row["decoded"])}


def _pipeline(ray: Any, work: list[tuple[Gallery, dict[int, str]]], preparation: Preparation, limits: ReadLimits,
              actors: int, gpus: int, model_args: tuple[str, str, str | None, bool], reader: str) -> Any:
    """Shards -> read tasks -> model actors, streamed by Ray Data (backpressure, retries). Retries are bounded
    (Ray Data's default is without end, so a file that kills its reader would hang the job): a task lost with
    its worker is rerun RETRIES times, a dead actor restarted as often; a shard still failing is skipped
    (`max_errored_blocks`) and its files listed as failures by the caller. Reading asks Ray for a quarter CPU,
    so it goes on beside actors that hold most of a CPU."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.verbose_stats_logs = False
    context.print_on_execution_start = False
    context.max_errored_blocks = len(work)
    rows = []
    for k, (shard, _digests) in enumerate(work):  # the files, listed on the driver
        files = [e for e in shard.entries if e.path is not None]
        rows.append({"k": k, "paths": [str(e.path) for e in files],
                     "modalities": [e.modality.value if e.modality else "" for e in files]})
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    with warnings.catch_warnings():  # the retry arguments are deprecated in Ray 2.60 with no named replacement
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        ds = ds.map(_read, fn_kwargs={"preparation": preparation, "limits": limits, "reader": reader},
                    num_cpus=0.25, max_retries=RETRIES)
        ds = ds.map(_Embed, fn_constructor_args=(work, *model_args), concurrency=actors,
                    num_cpus=0 if gpus else 0.75, num_gpus=gpus, max_restarts=RETRIES, max_task_retries=RETRIES)
    return _rows(ray, ds)


def _rows(ray: Any, ds: Any) -> Iterator[dict[str, Any]]:
    """The output rows as blocks finish. Not `iter_rows`: its prefetching thread outlives a loop left early."""
    from ray.data.block import BlockAccessor

    for bundle in ds.iter_internal_ref_bundles():
        for ref in bundle.block_refs:
            yield from BlockAccessor.for_block(ray.get(ref)).iter_rows(public_row_format=True)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClensError("--engine ray needs Ray: pip install 'contrastive-lens[distributed]'") from None
    return ray


def embed_on_ray(model: BaseModel, gallery: Gallery, cache: EmbeddingCache, state: TaskState | None = None,
                 address: str | None = None, actors: int | None = None, device: str | None = None,
                 allow_pickle: bool = False, shard_files: int = SHARD_FILES, reader: str = DEFAULT_READER) -> RayRun:
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
    stack = contextlib.ExitStack()
    try:
        gpus = 1 if device == "cuda" else 0
        count = min(actors or max(1, int(ray.available_resources().get("GPU" if gpus else "CPU", 1))), len(shards))
        work = [(Gallery(gallery.name, gallery.origin, [gallery.entries[i] for i in shard]),
                 {n: digests[i] for n, i in enumerate(shard)}) for shard in shards]
        results = _pipeline(ray, work, Preparation.of(model), ReadLimits(), count, gpus,
                            (str(Path(model.source)), fingerprint, device, allow_pickle), reader)
        run.read_tasks = len(work)
        done = 0
        returned: set[int] = set()
        rows = iter(results)
        stack.callback(getattr(rows, "close", lambda: None))  # a cancelled run stops the pipeline and its prefetcher
        for row in rows:
            result: ShardResult = row["result"]
            returned.add(int(row["k"]))
            cache.put(fingerprint, result.records, result.complete)  # durable shard by shard
            run.embedded += result.embedded
            run.failures += result.failures
            done += 1
            state.message(f"shard {done}/{len(shards)} is in the cache ({result.embedded} embedded)")
            state.set_progress(done, len(shards), f"embedding on Ray: shard {done}/{len(shards)}")
            if state.cancel_requested:
                raise Cancelled("cancelled by the user")
        for k in sorted(set(range(len(work))) - returned):  # its task or actor kept dying: skipped, listed, not cached
            run.failures += [Failure(e.source, f"its shard ({len(work[k][0].entries)} entries) failed {RETRIES + 1} "
                                     "times in Ray (a file in it may crash its reader); not cached, tried again "
                                     "on the next run", "job") for e in work[k][0].entries]
    except Cancelled:
        run.cancelled = True
    except ClensError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray wraps worker errors in its own types
        lines = [line for line in str(exc).splitlines() if line.strip() and not line.startswith("To change retry")]
        raise ClensError(f"the Ray job failed: {(lines or [type(exc).__name__])[-1].strip()[:300]}") from None
    finally:
        stack.close()
        if started:
            ray.shutdown()
    return run
