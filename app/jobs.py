"""The window's controller: each user intent runs one function of `cl_core.actions` as a job of a kind,
and hands the result to the Session (which refuses stale ones). Panels call this; nobody calls panels.

A model switch keeps what was shown: dropped items are embedded again and the open gallery is reopened
with the new model (through the cache), reported in one status line. One decoder pool serves every job
for the life of the window: started lazily, warmed when a model is ready, closed at shutdown.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from cl_core import actions
from cl_core.actions import (
    DecodePool,
    EmbeddingCache,
    EmbedResult,
    demo_for_model,
    demo_of_gallery,
    looks_like_checkpoint,
)
from cl_core.errors import ArchitectureNeeded, ClensError, problems
from cl_core.modality import Item
from cl_core.session import Session
from cl_core.state import ModelSettings
from cl_core.task import Progress, TaskState

from .qt_worker import Job, JobRunner, settle_heap

EXPLAINED_KEPT = 32  # maps kept in memory (an image's map is ~4 MB at most)


class Jobs(QObject):
    busy_changed = Signal(bool)
    progress = Signal(object)  # Progress of the newest running job (throttled)
    status = Signal(str)  # one line for the status bar
    error = Signal(str)  # a job-level failure (e.g. the model did not load)
    job_done = Signal(str)  # the job's kind (model, embed, gallery, search), after its result was handled
    arch_needed = Signal(str, list)  # a lone state dict's path (and what was to be embedded): name its architecture
    thumbnails_ready = Signal(object)  # {source path: thumbnail PNG path} for shown results

    def __init__(self, session: Session, parent: QObject | None = None,
                 settings: ModelSettings | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.settings = settings or ModelSettings()
        self.runner = JobRunner(self)
        self.runner.progress.connect(self._relay_progress)
        self._cache: EmbeddingCache | None = None
        self._cache_lock = threading.Lock()
        self._pool: DecodePool | None = None
        self._then_gallery: tuple[str, str] | None = None  # (source, kind) to open once a model is ready
        self._then_search: str | None = None  # a text to search once a gallery is ready
        self._then_project: str | None = None  # a method to map the gallery with once it is ready
        self._then_measure: list[Callable[[], object]] = []  # measures to take once a gallery is ready
        self.second_model: str | None = None  # compared with the open model on each gallery opened (None: none)
        # how stacks are shown: three channel names (red, green, blue) or ChannelLook specs (None: the default)
        self.composite: tuple[str, ...] | None = None
        self.explain_rank: int | None = None  # after the next search, explain its hit of this rank (1: best)
        self._explained: OrderedDict[tuple[str, str, str, str], actions.Explained] = OrderedDict()
        self.settings.events.cache_dir.connect(self._drop_cache)

    # ---- shared resources ----------------------------------------------------------------------

    def cache(self) -> EmbeddingCache:
        """The embedding cache, opened on first use — by a job's worker, never the UI thread (opening it
        reads its database and looks for orphaned segments)."""
        with self._cache_lock:
            if self._cache is None:
                self._cache = EmbeddingCache(self.settings.cache_dir)
            return self._cache

    def cache_root(self) -> Path:
        return EmbeddingCache.root_for(self.settings.cache_dir)

    def _drop_cache(self, *_: Any) -> None:
        if self._cache is not None and not self.busy:
            self._cache.close()
            self._cache = None

    def pool(self) -> DecodePool:
        if self._pool is None:
            self._pool = DecodePool()
        return self._pool

    @property
    def busy(self) -> bool:
        return bool(self.runner.active)

    def _start(self, kind: str, name: str, fn: Any, on_result: Any, on_partial: Any = None) -> Job:
        def wire(job: Job) -> None:
            sig = job.signals
            sig.failed.connect(lambda msg: self.error.emit(f"{name} failed: {msg}"))
            sig.cancelled.connect(lambda: self.status.emit(f"{name} cancelled; finished work kept"))
            sig.done.connect(lambda: self._done(job))

        was_busy = self.busy
        job = self.runner.submit(kind, name, fn, on_result, wire, on_partial)
        if not was_busy:
            self.busy_changed.emit(True)
        return job

    def _done(self, job: Job) -> None:
        self.job_done.emit(job.kind)
        if not self.runner.active:
            self.busy_changed.emit(False)

    def _relay_progress(self, payload: tuple[Job, Progress]) -> None:
        job, p = payload
        if self.runner.active and job is self.runner.active[-1]:
            self.progress.emit(p)

    # ---- model ---------------------------------------------------------------------------------

    def open_model(self, path: str | Path, then_embed: Sequence[str | Path] = (), arch: str | None = None) -> Job:
        """Load a checkpoint in a worker; then embed again what was shown, and embed `then_embed`. A lone state
        dict that does not say its architecture comes back as `arch_needed` (the panel asks, then calls again
        with `arch`)."""
        device, allow_pickle, cache = self.settings.device_choice(), self.settings.allow_pickle, self.cache
        follow_up = list(then_embed)
        self.status.emit(f"loading {path} ...")
        self.pool().warm()  # the decoders start while the model loads: the first drop decodes at once

        def load(state: TaskState) -> actions.ModelOpened | ArchitectureNeeded:
            try:
                return actions.open_model(path, device, allow_pickle, cache(), state, arch=arch)
            except ArchitectureNeeded as exc:
                return exc

        def loaded(got: actions.ModelOpened | ArchitectureNeeded) -> None:
            if isinstance(got, ArchitectureNeeded):
                self.status.emit(str(got))
                self.arch_needed.emit(got.path, follow_up)
            else:
                self._model_loaded(got, follow_up)

        return self._start("model", "loading the model", load, loaded)

    def open_demo(self, name: str = "shapes_sounds", with_gallery: bool = True) -> Job:
        """A bundled demo: its model, its example files embedded, and its search gallery opened."""
        device, cache = self.settings.device_choice(), self.cache
        self.status.emit(f"opening the {name.replace('_', ' & ')} demo ...")
        if with_gallery:
            self._then_gallery = (f"demo:{name}", "auto")
        self.pool().warm()

        def load(state: TaskState) -> tuple[actions.ModelOpened, list[Path]]:
            demo = actions.demo_files(name)
            return actions.open_model(demo.model, device, False, cache(), state), demo.files

        return self._start("model", "opening the demo", load, lambda got: self._model_loaded(got[0], list(got[1])))

    def _model_loaded(self, opened: actions.ModelOpened, follow_up: list[str | Path]) -> None:
        model = opened.model
        for kind in ("gallery", "search"):  # computed for the old model: superseded
            self.runner.cancel_kind(kind)
        reopen = self._then_gallery or ((self.session.gallery_source, "auto") if self.session.gallery_source else None)
        self._then_gallery = None
        self.session.set_model(model, opened.fingerprint)
        settle_heap()
        pending = self.session.take_pending()
        again = [f"{len(pending)} item(s)"] if pending else []
        if reopen is not None:
            again.append(f"the gallery {reopen[0]}")
        only = model.modalities[0].value if len(model.modalities) == 1 else None
        self.status.emit(f"model {model.name} ready: {', '.join(m.value for m in model.modalities)}, "
                         f"{model.embed_dim}-d, on {model.device}"
                         + (f"; it embeds {only} only: search {only} by {only} (cross-modal search needs a model "
                            "with two modalities)" if only else "")
                         + (f"; embedding again: {' and '.join(again)}" if again else ""))
        if pending or follow_up:
            self.embed(follow_up, items=pending)
        if reopen is not None:
            self.open_gallery(*reopen)

    # ---- dropped items -------------------------------------------------------------------------

    def open_paths(self, paths: Sequence[str], texts: Sequence[str] = (), explicit_model: bool = False) -> None:
        """A drop or a command line: a checkpoint opens as the model (the first path, when `explicit_model`),
        everything else is embedded with it."""
        models = list(paths[:1]) if explicit_model else [p for p in paths if looks_like_checkpoint(p)]
        inputs = [p for p in paths if p not in models]
        if models:
            self.open_model(models[0], then_embed=inputs)
            if texts:
                self.status.emit("texts dropped with a model are not embedded; drop them again once it is open")
        elif inputs or texts:
            self.embed(inputs, texts)

    def embed(self, paths: Sequence[str | Path] = (), texts: Sequence[str] = (),
              items: Sequence[Item] = ()) -> Job | None:
        """Embed files and texts (and items already decoded) with the open model; appended to the session."""
        model = self.session.model
        if model is None:
            self.error.emit("open a model first: drop a checkpoint folder on the window or use Open model")
            return None
        paths, texts, items, pool = list(paths), list(texts), list(items), self.pool()
        if not (paths or texts or items):
            return None

        def run(state: TaskState) -> EmbedResult:
            return actions.embed_inputs(model, paths, texts, state=state, pool=pool, items=items)

        return self._start("embed", "embedding", run, self._embedded)

    def _embedded(self, result: EmbedResult) -> None:
        if not self.session.add_result(result):  # embedded by a model that is no longer open: again
            self.session.report([f for f in result.failures if f.stage in ("read", "skipped")])
            self.embed(items=result.items)
            return
        n_bad = len(problems(result.failures))
        self.status.emit(f"embedded {len(result.items)} item(s)" + (f"; {n_bad} could not be used" if n_bad else "")
                         + (" (cancelled part-way)" if result.cancelled else ""))

    # ---- gallery and search --------------------------------------------------------------------

    def open_gallery(self, source: str | Path, kind: str = "auto") -> Job | None:
        """Embed a gallery (the cache first) and index it; a demo gallery comes with its own demo model."""
        model = self.session.model
        demo = demo_of_gallery(source)
        if demo is not None and (model is None or demo_for_model(model.source) != demo):
            self._then_gallery = (str(source), kind)
            self.status.emit(f"{source} belongs to the {demo.replace('_', ' & ')} demo model: opening it first")
            self.session.clear_items()
            return self.open_demo(demo, with_gallery=False)
        if model is None:
            if any(j.kind == "model" for j in self.runner.active):
                self._then_gallery = (str(source), kind)  # opened once the model is ready
                return None
            self.error.emit("open a model first, then a gallery")
            return None
        cache, pool = self.cache, self.pool()
        allow_outside = self.settings.allow_outside_files
        self.status.emit(f"opening the gallery {source} ...")

        def run(state: TaskState) -> actions.GalleryOpened:
            return actions.open_gallery(model, source, cache(), kind, state, pool, allow_outside)

        return self._start("gallery", "opening the gallery", run, self._gallery_ready)

    def _gallery_ready(self, opened: actions.GalleryOpened) -> None:
        emb, index = opened.embedding, opened.index
        if not self.session.set_gallery(opened):
            if self.session.is_current(opened.model_fingerprint):
                why = "cancelled; what was embedded is cached" if emb.cancelled else "nothing could be embedded"
                self.status.emit(f"gallery {emb.gallery.name}: {why}")
            return
        assert index is not None
        settle_heap()
        kinds = ", ".join(f"{p.modality.value} {p.built.kind}" for p in index.parts.values())
        self.status.emit(f"gallery {emb.gallery.name}: {len(emb.rows)} items ({emb.from_cache} from the cache), "
                         f"indexed: {kinds}" + (f"; {len(problems(emb.failures))} not used (see Messages)"
                                                   if problems(emb.failures) else ""))
        if self._then_project:
            method, self._then_project = self._then_project, None
            self.project(method)
        second, then, self._then_measure = self.second_model, self._then_measure, []
        for measure in then:
            measure()
        if second is not None:  # the second model, compared on the new gallery too
            self.open_comparison(second)
        if self._then_search:
            text, self._then_search = self._then_search, None
            self.search(actions.SearchRequest(texts=(text,), min_relevance=actions.DEFAULT_MIN_RELEVANCE))

    def project_when_ready(self, method: str) -> None:
        """Map the gallery as soon as one is open (now, if one is)."""
        if self.session.index is not None:
            self.project(method)
        else:
            self._then_project = method

    def search_when_ready(self, text: str) -> None:
        """Search for `text` as soon as a gallery is open (now, if one is)."""
        if self.session.index is not None:
            self.search(actions.SearchRequest(texts=(text,), min_relevance=actions.DEFAULT_MIN_RELEVANCE))
        else:
            self._then_search = text

    def search(self, request: actions.SearchRequest) -> Job | None:
        """Embed the query's parts, fuse them, search the gallery; a newer search supersedes this one."""
        model, index = self.session.model, self.session.index
        if model is None or index is None:
            self.error.emit("open a model and a gallery first")
            return None
        try:
            request.validate()
        except ClensError as exc:
            self.status.emit(str(exc))
            return None
        pool = self.pool()

        def run(state: TaskState) -> actions.SearchResult:
            return actions.search(model, index, request, state, pool)

        return self._start("search", "searching", run, self._searched)

    def _searched(self, result: actions.SearchResult) -> None:
        if not self.session.set_results(result):
            return  # asked of a model or gallery that is no longer open
        hits = result.shown  # the hits, or the closest items when none passes the threshold: both are drawn
        self.place_query()
        self.fetch_thumbnails([h.source for h in hits if not h.text],
                              stacks=[h.source for h in hits if h.modality == "multichannel"])
        if result.failures:
            self.status.emit("the query could not be embedded (see Messages)")
        else:
            self.status.emit(f"{len(hits)} result(s)" if hits else "nothing relevant above the threshold")
        if self.session.comparison is not None:
            self.compare_search()
        rank, self.explain_rank = self.explain_rank, None
        if rank is not None and 0 < rank <= len(result.shown):
            row = result.shown[rank - 1].row
            self.session.select_gallery([row])
            self.explain_row(row)

    def fetch_thumbnails(self, sources: Sequence[str], size: int = 128, kind: str = "thumbs",
                         stacks: Sequence[str] = ()) -> Job | None:
        """Thumbnails of files, drawn in the decoder processes and cached on disk by content; `stacks` (channel
        stacks among them) are drawn in the chosen composite. `kind`: the results' thumbnails ("thumbs") and
        the map's hover preview ("preview") do not cancel each other."""
        paths = list(dict.fromkeys(s for s in sources if s))
        if not paths:
            return None
        cache, pool = self.cache, self.pool()
        channels = {s: self.composite for s in stacks} if self.composite else None

        def run(state: TaskState) -> dict[str, Any]:
            return actions.thumbnails(paths, cache(), size, state, pool, channels)

        return self._start(kind, "drawing thumbnails", run, self.thumbnails_ready.emit, self.thumbnails_ready.emit)

    def set_composite(self, names: tuple[str, ...] | None) -> Job | None:
        """How channel stacks are shown (three names as red, green and blue, or ChannelLook specs with colours and
        contrast limits); the shown ones are drawn again."""
        self.composite = names
        shown = self.session.results
        stacks = [h.source for h in shown if h.modality == "multichannel"]
        # every shown result is asked for again (those on disk come back at once): a new request replaces the one
        # in flight, whose pictures of other results would otherwise never arrive
        return self.fetch_thumbnails([h.source for h in shown if not h.text], stacks=stacks) if stacks else None

    def more_like(self, rows: Sequence[int], k: int = 10, min_relevance: float | None = None) -> Job | None:
        """Search with gallery rows as the query (several are fused): 'more like this'; `min_relevance` None
        shows every hit up to k."""
        index = self.session.index
        if index is None or not rows:
            return None
        vectors = np.asarray(index.vectors[list(rows)], np.float32)
        request = actions.SearchRequest(vectors=vectors, vector_sources=tuple(index.rows[r].source for r in rows),
                                        vector_modalities=tuple(index.rows[r].modality.value for r in rows), k=k,
                                        min_relevance=min_relevance)
        return self.search(request)

    # ---- the gallery's map ----------------------------------------------------------------------

    def project(self, method: str = "pca", params: dict[str, Any] | None = None) -> Job | None:
        """Map every gallery row (read from the cache when it was made before); the query is then placed."""
        index = self.session.index
        if index is None:
            self.error.emit("open a gallery first, then map it")
            return None
        root = self.cache_root()

        def run(state: TaskState) -> actions.Projected:
            return actions.project(index, method, params, root, state)

        return self._start("project", f"{method.upper()} map", run, self._projected)

    def _projected(self, projected: actions.Projected) -> None:
        if not self.session.set_projection(projected):
            return
        p = projected.projection
        how = "from the cache" if projected.from_cache else f"in {p.seconds:.1f} s"
        self.status.emit(f"{p.method.upper()} map of {len(p.coords):,} items ({how})")
        self.place_query()

    def place_query(self) -> Job | None:
        """Draw the shown results' query into the map by the map's own transform (a job: UMAP's takes seconds)."""
        projected, vector, index = self.session.projection, self.session.query_vector, self.session.index
        if projected is None or vector is None or index is None:
            self.session.set_query_point(None)
            return None
        root = self.cache_root()

        def run(state: TaskState) -> tuple[actions.Projected, Any]:
            mapped = projected
            if mapped.projection.fitted is None:  # only the coordinates were cached: fit again (same seed)
                p = mapped.projection
                mapped = actions.project(index, p.method, p.params, root, state, need_fitted=True)
            return mapped, mapped.projection.place(vector)[0]

        return self._start("place", "placing the query", run, self._placed)

    def _placed(self, got: tuple[actions.Projected, Any]) -> None:
        projected, point = got
        if projected is not self.session.projection:  # fitted again to place: the same map, with its model
            if not self.session.set_projection(projected):
                return
        self.session.set_query_point(point, projected)

    # ---- the gallery's geometry -------------------------------------------------------------------

    def diagnose(self, k: int = 10) -> Job | None:
        """Measure the open gallery's geometry (gap, spectrum, cosines, hubs) from its vectors: no model runs."""
        gallery = self.session.gallery
        if gallery is None or self.session.index is None:
            self.error.emit("open a gallery first, then measure it")
            return None

        comparison = self.session.comparison

        def run(state: TaskState) -> actions.Diagnosis:
            got = actions.diagnose_gallery(gallery, k, state)
            if comparison is not None:  # a second model is open: its geometry is drawn beside the first's
                got.second = actions.diagnose_gallery(comparison.embedding, k, state)
                got.second_name = comparison.model.name
            return got

        def done(got: actions.Diagnosis) -> None:
            if self.session.set_diagnosis(got):
                self.status.emit(f"gallery {gallery.gallery.name} measured: see the Diagnostics panel")

        return self._start("diagnose", "measuring the gallery", run, done)

    def evaluate(self, templates: Sequence[str] | None = None) -> Job | None:
        """Recall@K both ways for every modality pair of the open gallery's paired samples, and zero-shot
        classification by its labels (`templates`: the prompts, default actions.DEFAULT_TEMPLATES)."""
        model, gallery = self.session.model, self.session.gallery
        if model is None or gallery is None:
            self.error.emit("open a gallery first, then evaluate the model on it")
            return None
        try:
            actions.check_templates(templates)
        except ClensError as exc:
            self.error.emit(str(exc))
            return None

        def run(state: TaskState) -> actions.Evaluation:
            return actions.evaluate_gallery(model, gallery, templates, state)

        def done(got: actions.Evaluation) -> None:
            if self.session.set_evaluation(got):
                self.status.emit(f"gallery {gallery.gallery.name} evaluated: see the Evaluation panel")

        return self._start("evaluate", "evaluating the model", run, done)

    def when_gallery_ready(self, measure: Callable[[], object]) -> None:
        """Run `measure` (e.g. self.diagnose) as soon as a gallery is open (now, if one is)."""
        if self.session.index is not None:
            measure()
        else:
            self._then_measure.append(measure)

    # ---- tissue --------------------------------------------------------------------------------------

    def infer_markers(self, row: int, text: str | None = None, k: int = 5, w: float = 0.8,
                      target: str = "mean") -> Job | None:
        """The marker profile of gallery row `row` (an H&E patch) inferred from the open gallery's other cases'
        mIF patches (its own case left out), with the clinical `text` when given."""
        model, index, source = self.session.model, self.session.index, self.session.gallery_source
        if model is None or index is None or source is None or not 0 <= row < len(index.rows):
            self.error.emit("open a tissue gallery, then select one H&E patch")
            return None
        r = index.rows[row]
        if r.modality.value != "image":
            self.status.emit("select an H&E patch (an image) to infer its markers")
            return None
        cache, pool, allow_outside = self.cache, self.pool(), self.settings.allow_outside_files

        def run(state: TaskState) -> actions.MarkersInferred:
            return actions.infer_markers(model, r.source, source, text or None, k, w, cache(), state, pool,
                                         allow_outside, exclude_sample=r.sample_id, target=target)

        return self._start("markers", "inferring the markers", run, self.session.set_markers)

    def counterfactual(self, rows: list[int], text: str, edited: str, k: int = 50, w: float = 0.6,
                       target: str = "mean") -> Job | None:
        """How the inferred profiles of the H&E patches at gallery `rows` (one case's) shift when `text` becomes
        `edited`, from the open gallery's other cases."""
        model, index, source = self.session.model, self.session.index, self.session.gallery_source
        if model is None or index is None or source is None:
            self.error.emit("open a tissue gallery, then select the case's H&E patches")
            return None
        picked = [index.rows[r] for r in rows if 0 <= r < len(index.rows) and index.rows[r].modality.value == "image"]
        if not picked:
            self.status.emit("select one or more H&E patches (images) of a case")
            return None
        cache, pool, allow_outside = self.cache, self.pool(), self.settings.allow_outside_files

        def run(state: TaskState) -> actions.Shift:
            return actions.counterfactual(model, [r.source for r in picked], source, text, edited, k, w, cache(),
                                          state, pool, allow_outside, {r.sample_id for r in picked}, target)

        return self._start("counterfactual", "editing the text", run, self.session.set_counterfactual)

    def slide_heatmap(self, path: str | Path, texts: Sequence[str] = (), files: Sequence[str | Path] = ()) -> Job | None:
        """A whole slide tiled, embedded through the cache, scored against the query; with its overview."""
        model = self.session.model
        if model is None:
            self.error.emit("open a model first")
            return None
        cache = self.cache

        def run(state: TaskState) -> actions.SlideHeat:
            heat = actions.slide_heatmap(model, path, texts, files, None, cache(), state)
            picture = actions.overview_picture(path)
            heat.overview = np.asarray(picture)
            heat.overview_scale = actions.slide_width(path) / max(1, picture.width)
            return heat

        def done(heat: actions.SlideHeat) -> None:
            if self.session.set_slide(heat):
                e = heat.embedding
                self.status.emit(f"{Path(e.path).name}: {e.rows * e.cols} tiles ({e.from_cache} of {e.rows} rows "
                                 "from the cache)" + (" — interrupted, the rest not embedded" if e.cancelled else ""))

        return self._start("slide", "tiling the slide", run, done)

    # ---- a second model -------------------------------------------------------------------------

    def open_comparison(self, path: str | Path) -> Job | None:
        """Open a second checkpoint beside the model and run the open gallery through it (the cache serves what
        it embedded before); its figures beside the first model's, and each search run through both."""
        gallery, source = self.session.gallery, self.session.gallery_source
        if gallery is None or source is None:
            self.error.emit("open a gallery first, then a second model to compare on it")
            return None
        self.second_model = str(path)
        device, allow_pickle = self.settings.device_choice(), self.settings.allow_pickle
        allow_outside, cache, pool = self.settings.allow_outside_files, self.cache, self.pool()

        root = self.cache_root()

        def run(state: TaskState) -> actions.Comparison:
            opened = actions.open_model(path, device, allow_pickle, cache(), state)
            got = actions.open_comparison(opened.model, source, gallery, cache(), state, pool, allow_outside,
                                          fingerprint=opened.fingerprint)
            got.coords = actions.project(got.index, "pca", None, root, state).coords  # its space, beside the first's
            return got

        def done(got: actions.Comparison) -> None:
            if self.session.set_comparison(got):
                self.status.emit(f"second model {got.model.name} on the gallery: see the Compare panel")
                if self.session.query is not None:
                    self.compare_search()

        return self._start("compare", "opening the second model", run, done)

    def close_comparison(self) -> None:
        self.second_model = None
        self.runner.cancel_kind("compare")
        self.session.set_comparison(None)

    def compare_search(self) -> Job | None:
        """The shown results' query run through the second model too, and the two lists' overlap."""
        comparison, request = self.session.comparison, self.session.query
        if comparison is None or request is None:
            return None
        first = list(self.session.results)

        def run(state: TaskState) -> actions.Comparison:
            return actions.compare_search(comparison, request, first, state)

        return self._start("compare", "searching with the second model", run, self.session.set_comparison)

    # ---- why it matched ----------------------------------------------------------------------------

    def explain_row(self, row: int) -> Job | None:
        """Map why gallery row `row` matched the shown results' query (where in its picture, when in its sound,
        which of its words); kept per (model, item, query), so showing it again is instant."""
        model, index, vector = self.session.model, self.session.index, self.session.query_vector
        if model is None or index is None or not 0 <= row < len(index.rows):
            self.error.emit("open a model and a gallery, then pick one item to explain")
            return None
        if vector is None:
            self.status.emit("search first: an item is explained against the shown results' query")
            return None
        r = index.rows[row]
        query = self.session.query
        label = [*query.texts, *query.files, *query.vector_sources] if query is not None else []
        fingerprint = self.session.model_fingerprint or ""
        key = (fingerprint, r.modality.value, r.text if r.text is not None else r.source,
               hashlib.sha256(np.ascontiguousarray(vector, np.float32).tobytes()).hexdigest())
        known = self._explained.get(key)
        if known is not None:
            self._explained.move_to_end(key)
            self.session.set_explanation(known)
            return None
        self.status.emit(f"explaining {r.source} ...")

        def run(state: TaskState) -> actions.Explained:
            if r.text is not None and r.modality.value == "text":
                return actions.explain(model, target_text=r.text, state=state, query_vector=vector, query_label=label,
                                       fingerprint=fingerprint)
            return actions.explain(model, r.source, state=state, query_vector=vector, query_label=label,
                                   modality=r.modality.value, fingerprint=fingerprint)

        def done(got: actions.Explained) -> None:
            self._explained[key] = got
            while len(self._explained) > EXPLAINED_KEPT:
                self._explained.popitem(last=False)
            if self.session.set_explanation(got):
                self.status.emit(f"why {Path(got.target).name if got.modality != 'text' else 'the text'} matched: "
                                 "see the Why panel")

        return self._start("explain", "explaining the match", run, done)

    # ---- cancel and shutdown -------------------------------------------------------------------

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job (by id), or the newest running one."""
        if job_id is None and self.runner.active:
            job_id = self.runner.active[-1].id
        if job_id is not None:
            self.runner.cancel(job_id)

    def cancel_all(self) -> None:
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
