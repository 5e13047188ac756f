"""User actions that need a worker: open a model, embed files and texts, open and search a gallery.
Results go into the Session.

Panels call these; nobody calls panels. A model change while an embedding job runs re-routes that job's
decoded items to the new model, so nothing the user dropped is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.qt_worker import Task, TaskRunner
from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.gallery import GalleryEmbedding, embed_gallery
from cl_core.embed.items import EmbedResult, embed_items, embed_paths
from cl_core.embed.sources import open_source
from cl_core.modality import Item, Modality
from cl_core.models.base import BaseModel
from cl_core.models.open import open_checkpoint
from cl_core.search.build import reuse_or_build
from cl_core.search.query import Hit, search
from cl_core.search.store import IndexSet
from cl_core.session import Session
from cl_core.task import TaskState


class Jobs(QObject):
    busy_changed = Signal(bool)
    progress = Signal(object)  # Progress of the newest job
    status = Signal(str)  # one line for the status bar
    error = Signal(str)  # a job-level failure (e.g. the model did not load)
    job_done = Signal(str)  # job name, after its result reached the session

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = TaskRunner(self)
        self.device: str | None = None
        self.allow_pickle = False
        self.cache_dir: Path | None = None  # None: the user cache folder
        self._cache: EmbeddingCache | None = None
        self._pool: DecodePool | None = None  # kept alive across gallery jobs; closed at shutdown

    def cache(self) -> EmbeddingCache:
        if self._cache is None:
            self._cache = EmbeddingCache(self.cache_dir)
        return self._cache

    def pool(self) -> DecodePool:
        if self._pool is None:
            self._pool = DecodePool()
        return self._pool

    @property
    def busy(self) -> bool:
        return bool(self.runner.active)

    def _start(self, name: str, fn: Any, on_result: Any) -> Task:
        def wire(task: Task) -> None:
            sig = task.signals
            sig.progress.connect(self.progress)  # relayed as is
            sig.finished.connect(on_result)
            sig.failed.connect(lambda msg: self.error.emit(f"{name} failed: {msg}"))
            sig.cancelled.connect(lambda: self.status.emit(f"{name} cancelled; finished work kept"))
            sig.done.connect(lambda: self._done(name))

        self.busy_changed.emit(True)
        return self.runner.submit(name, fn, wire)

    def _done(self, name: str) -> None:
        self.job_done.emit(name)
        if not self.runner.active:
            self.busy_changed.emit(False)

    # ---- actions ---------------------------------------------------------------------------

    def open_model(self, path: str | Path, then_embed: Sequence[str | Path] = ()) -> Task:
        """Load a checkpoint in a worker; then re-embed what was shown, and embed `then_embed`."""
        device, allow_pickle = self.device, self.allow_pickle
        follow_up = list(then_embed)
        self.status.emit(f"loading {path} ...")

        def load(state: TaskState) -> BaseModel:
            return open_checkpoint(path, device=device, allow_pickle=allow_pickle, state=state)

        return self._start("loading the model", load, lambda model: self._model_loaded(model, follow_up))

    def open_demo(self, name: str = "shapes_sounds") -> Task:
        """A bundled demo: write its gallery if needed and load its model, in a worker; then embed."""
        device = self.device
        self.status.emit(f"opening the {name.replace('_', ' & ')} demo ...")

        def load(state: TaskState) -> tuple[BaseModel, list[Path]]:
            from cl_core.demo.galleries import DEMOS, ensure_demo_gallery

            files = ensure_demo_gallery(name=name)
            return open_checkpoint(DEMOS[name].model, device=device, state=state), files

        return self._start("opening the demo", load, lambda got: self._model_loaded(got[0], list(got[1])))

    def _model_loaded(self, model: BaseModel, follow_up: list[str | Path]) -> None:
        self.session.set_model(model)
        self.status.emit(f"model {model.name} ready: {', '.join(m.value for m in model.modalities)}, "
                         f"{model.embed_dim}-d, on {model.device}")
        pending = self.session.pending_items
        if pending:
            self.session.pending_items = []
            self.embed_decoded(pending)
        if follow_up:
            self.embed(follow_up)

    def embed(self, paths: Sequence[str | Path] = (), texts: Sequence[str] = ()) -> Task | None:
        model = self.session.model
        if model is None:
            self.error.emit("open a model first: drop a checkpoint folder on the window or use Open model")
            return None
        paths, texts = list(paths), list(texts)

        def run(state: TaskState) -> tuple[BaseModel, EmbedResult]:
            return model, embed_paths(model, paths, texts, state=state)

        return self._start("embedding", run, self._embedded)

    def embed_decoded(self, items: list[Item]) -> Task | None:
        model = self.session.model
        if model is None or not items:
            return None

        def run(state: TaskState) -> tuple[BaseModel, EmbedResult]:
            return model, embed_items(model, items, state)

        return self._start("embedding", run, self._embedded)

    def _embedded(self, payload: tuple[BaseModel, EmbedResult]) -> None:
        model, result = payload
        if model is not self.session.model:  # the model changed meanwhile: embed these again with the new one
            self.session.report([f for f in result.failures if f.stage == "read"])
            self.embed_decoded(result.items)
            return
        self.session.add_result(result)
        n_bad = len(result.failures)
        self.status.emit(f"embedded {len(result.items)} item(s)" + (f"; {n_bad} could not be used" if n_bad else "")
                         + (" (cancelled part-way)" if result.cancelled else ""))

    def open_gallery(self, source: str | Path, kind: str = "auto") -> Task | None:
        """Embed a gallery (the cache first) and index it, in a worker; a cancelled job keeps its work."""
        model = self.session.model
        if model is None:
            self.error.emit("open a model first, then a gallery")
            return None
        cache, pool = self.cache(), self.pool()
        self.status.emit(f"opening the gallery {source} ...")

        def run(state: TaskState) -> tuple[BaseModel, GalleryEmbedding, IndexSet | None]:
            emb = embed_gallery(model, open_source(source), cache, state, pool)
            if emb.cancelled or not emb.rows:
                return model, emb, None
            index = reuse_or_build(model, emb, cache.root, kind, state)
            if [r.source for r in index.rows] == [r.source for r in emb.rows]:
                emb.vectors = index.vectors  # the same rows: keep one (memory-mapped) copy, not two
            return model, emb, index

        return self._start("opening the gallery", run, self._gallery_ready)

    def _gallery_ready(self, payload: tuple[BaseModel, GalleryEmbedding, IndexSet | None]) -> None:
        model, emb, index = payload
        if model is not self.session.model:
            self.status.emit("the model changed while the gallery was embedded; open the gallery again")
            return
        if index is None:
            self.session.report(emb.failures)
            why = "cancelled; what was embedded is cached" if emb.cancelled else "nothing could be embedded"
            self.status.emit(f"gallery {emb.gallery.name}: {why}")
            return
        self.session.set_gallery(emb, index)
        kinds = ", ".join(f"{p.modality.value} {p.built.kind}" for p in index.parts.values())
        self.status.emit(f"gallery {emb.gallery.name}: {len(emb.rows)} items ({emb.from_cache} from the cache), "
                         f"indexed: {kinds}")

    def search(self, texts: Sequence[str], item_rows: Sequence[int], target: Modality | None, k: int,
               fusion: str = "mean", min_z: float | None = None) -> Task | None:
        """Embed the query texts, fuse them with the chosen items' vectors, search the gallery index."""
        model, index = self.session.model, self.session.index
        if model is None or index is None:
            self.error.emit("open a model and a gallery first")
            return None
        texts = [t for t in texts if t.strip()]
        picked = self.session.vectors[list(item_rows)] if len(item_rows) else None
        if not texts and picked is None:
            self.status.emit("type a query or select inputs to search with")
            return None

        def run(state: TaskState) -> list[Hit]:
            parts = [] if picked is None else [picked]
            if texts:
                parts.append(model.encode(Modality.TEXT, [Item(f"query:{t}", Modality.TEXT, t) for t in texts],
                                          state=state))
            return search(index, np.concatenate(parts), target, k, fusion, None, min_z)

        return self._start("searching", run, self._searched)

    def _searched(self, hits: list[Hit]) -> None:
        self.session.set_results(hits)
        self.status.emit(f"{len(hits)} result(s)" if hits else "nothing relevant above the threshold")

    def cancel(self) -> None:
        self.runner.cancel_all()

    def shutdown(self) -> bool:
        finished = self.runner.shutdown()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._cache is not None and finished:
            self._cache.close()
            self._cache = None
        return finished
