"""The headless verbs: parse -> one call into cl_core.actions -> text or JSON. No pipeline code here."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cl_core.cli.format import (
    print_comparison,
    print_diagnosis,
    print_evaluation,
    print_explained,
    print_failures,
    print_hits,
    print_info,
    print_markers,
    print_shift,
)
from cl_core.cli.progress import ProgressPrinter
from cl_core.errors import ClensError, problems

if TYPE_CHECKING:
    from cl_core import actions as actions_t

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _interrupted(done: int, where: str) -> int:
    print(f"interrupted: {done} item(s) embedded and kept {where}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _actions():  # noqa: ANN202 - the actions layer, imported on first use (torch, faiss): `clens --help` stays fast
    from cl_core import actions

    return actions


def _cache(args: argparse.Namespace) -> Any:  # EmbeddingCache | None
    return None if args.no_cache else _actions().EmbeddingCache(args.cache)


def _open(args: argparse.Namespace, cache: Any = None) -> actions_t.ModelOpened:
    return _actions().open_model(args.model, args.device, args.allow_pickle, cache, arch=getattr(args, "arch", None))


def _out_file_ok(verb: str, out: Path) -> bool:
    """--out must name a file in an existing folder: checked before any model is loaded."""
    if out.is_dir() or not out.parent.is_dir():
        print(f"clens {verb}: --out {out}: " + ("is a folder" if out.is_dir() else f"no such folder {out.parent}"),
              file=sys.stderr)
        return False
    return True


def _index_with_model(args: argparse.Namespace, cache: Any) -> tuple[Any, Any]:
    """An index folder and its model: --model when given, else the one the index records."""
    model = _open(args, cache).model if args.model else None
    return _actions().open_search_index(args.index, model, args.device, args.allow_pickle, cache)


def _summary(emb: Any, quiet: bool) -> None:
    print_failures(emb.failures)
    if not quiet:
        print(f"{len(emb.rows)} items ({emb.from_cache} from the cache, {emb.embedded} embedded now), "
              f"{len(problems(emb.failures))} failed or quarantined", file=sys.stderr)


def cmd_info(args: argparse.Namespace) -> int:
    opened = _open(args)
    if args.json:
        print(json.dumps(opened.info, indent=2, default=str))
    else:
        print_info(opened.info)
    return EXIT_OK


def cmd_embed(args: argparse.Namespace) -> int:
    actions = _actions()
    if not args.inputs and not args.text:
        print("clens embed: give input files/folders or --text", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    if not _out_file_ok("embed", out):
        return EXIT_USAGE
    opened = _open(args)
    with ProgressPrinter(args.quiet) as progress:
        result = actions.embed_inputs(opened.model, args.inputs, args.text, args.modality, progress.state,
                                      args.batch_size)
    print_failures(result.failures)
    if not result.items:
        print("nothing was embedded", file=sys.stderr)
        return EXIT_INTERRUPTED if result.cancelled else EXIT_FAILED
    actions.save_embeddings(result, opened.model, out)
    print(f"wrote {len(result.items)} embeddings ({opened.model.embed_dim}-d) to {out}", file=sys.stderr)
    if result.cancelled:
        return _interrupted(len(result.items), f"(written to {out})")
    return EXIT_PARTIAL if problems(result.failures) else EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    actions = _actions()
    with ProgressPrinter(args.quiet) as progress:
        trained = actions.train(args.recipe, args.out, args.device, progress.state)
    for subset, (pair, r5) in trained.lowest_heldout().items():
        print(f"{subset}: lowest held-out R@5 {r5:.3f} ({pair}); card: {trained.out / 'MODEL_CARD.md'}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    actions = _actions()
    got = actions.demo_files(args.name)
    print(got.model)
    for path in got.files:
        print(path)
    return EXIT_OK


def cmd_index_build(args: argparse.Namespace) -> int:
    actions = _actions()
    cache = _cache(args)
    opened = _open(args, cache)
    with ProgressPrinter(args.quiet) as progress:
        built = actions.build_index(opened.model, args.source, args.out, args.kind, cache, progress.state,
                                    allow_outside=args.allow_outside_files, engine=args.engine,
                                    address=args.address, actors=args.actors, shard_files=args.shard_files)
    _summary(built.embedding, args.quiet)
    if built.embedding.cancelled:
        return _interrupted(built.embedding.embedded, "in the cache; run the same command again to continue")
    if built.index is None:
        print("nothing was embedded; no index written", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps({"index": str(built.out), "count": len(built.index.rows), "parts": built.index.summary(),
                          "failures": [f.to_dict() for f in built.embedding.failures]}, indent=2))
    else:
        print(f"index written to {built.out}")
        print(built.describe())
    return EXIT_PARTIAL if problems(built.embedding.failures) else EXIT_OK


def _query_lines(spec: str) -> list[str]:
    if spec == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(spec).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ClensError(f"--queries {spec}: cannot read: {exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def cmd_search(args: argparse.Namespace) -> int:
    actions = _actions()
    batch = _query_lines(args.queries) if args.queries else []
    if not args.query and not args.text and not batch:
        print("clens search: give --query FILE, --text T or --queries FILE", file=sys.stderr)
        return EXIT_USAGE
    cache = _cache(args)
    model, index = _index_with_model(args, cache)
    common = dict(target=args.target_modality, k=args.k, fusion=args.fusion,
                  weights=tuple(args.weight) if args.weight else None, min_z=args.min_z, min_score=args.min_score,
                  min_relevance=None if args.all else args.min_relevance)
    requests = [actions.SearchRequest(texts=(t,), **common) for t in batch]  # type: ignore[arg-type]
    if args.query or args.text:
        requests.insert(0, actions.SearchRequest(texts=tuple(args.text), files=tuple(args.query), **common))  # type: ignore[arg-type]
    results = [actions.search(model, index, r) for r in requests]
    failed = any(r.failures for r in results)
    for r in results:
        print_failures(r.failures)
    if args.json:
        blocks = [{"query": r.query_sources, "fusion": r.request.fusion, "fusion_note": r.fusion_note,
                   "hits": [h.to_dict() for h in r.hits],
                   "closest_below_threshold": [h.to_dict() for h in r.closest],
                   "failures": [f.to_dict() for f in r.failures]} for r in results]
        print(json.dumps(blocks[0] if len(blocks) == 1 else blocks, indent=2))
    else:
        for r in results:
            if len(results) > 1:
                print(f"# {' + '.join(r.query_sources) or '(query could not be embedded)'}")
            if r.request.fusion != "mean":
                print(f"({r.fusion_note or r.request.fusion + ' fusion'})")
            print_hits(r.hits, r.failures, r.closest)
    if failed:
        print("clens search: a query item could not be embedded; that query was not searched", file=sys.stderr)
        return EXIT_FAILED if len(results) == 1 else EXIT_PARTIAL
    return EXIT_OK


def cmd_project(args: argparse.Namespace) -> int:
    actions = _actions()
    out = Path(args.out) if args.out else None
    if out is not None and not _out_file_ok("project", out):
        return EXIT_USAGE
    cache = _cache(args)
    placing = bool(args.place or args.text)
    model = None
    if placing:  # the map's own model embeds what is placed; a map alone needs no model
        model, index = _index_with_model(args, cache)
    else:
        index = actions.read_index(args.index)
    with ProgressPrinter(args.quiet) as progress:
        projected = actions.project(index, args.method, dict(args.param), None if cache is None else cache.root,
                                    progress.state, need_fitted=placing)
        placed = actions.place(model, projected, args.place, args.text, state=progress.state) if model else None
    if out is not None:
        from cl_core.atomic import save_npy_atomic, write_text_atomic

        save_npy_atomic(out, np.asarray(projected.coords, np.float32))
        write_text_atomic(out.with_suffix(".json"), json.dumps(actions.describe_projection(projected, index), indent=2))
    if placed is not None:
        print_failures(placed.failures)
    if args.json:
        report = {k: v for k, v in actions.describe_projection(projected, index).items() if k != "rows"}
        report["out"] = str(out) if out else None
        if placed is not None:
            report["placed"] = [{"source": s, "x": float(x), "y": float(y)}
                                for s, (x, y) in zip(placed.sources, placed.coords, strict=True)]
        print(json.dumps(report, indent=2))
    else:
        how = "from the cache" if projected.from_cache else f"fitted in {projected.projection.seconds:.1f} s"
        print(f"{args.method} map of {len(projected.coords):,} items ({how})" + (f", written to {out}" if out else ""))
        for s, (x, y) in zip(placed.sources if placed else [], placed.coords if placed else [], strict=True):
            print(f"  {x:+9.3f} {y:+9.3f}  {s}")
    return EXIT_PARTIAL if placed is not None and placed.failures else EXIT_OK


def cmd_cache_info(args: argparse.Namespace) -> int:
    info = _actions().cache_info(args.cache)
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    print(f"{info['folder']}: {info['bytes'] / 2**20:,.1f} MB of embeddings")
    for fp, m in sorted(info["models"].items(), key=lambda kv: -kv[1]["bytes"]):
        newest = time.strftime("%Y-%m-%d", time.localtime(m["newest"])) if m["newest"] else "-"
        print(f"  model {fp[:16]}  {m['items']:>9,} items ({m['quarantined']} quarantined)  "
              f"{m['bytes'] / 2**20:>9,.1f} MB  last written {newest}")
    for name, size in info["derived"].items():
        print(f"  {name:<11} {size / 2**20:,.1f} MB")
    return EXIT_OK


def cmd_cache_prune(args: argparse.Namespace) -> int:
    got = _actions().cache_prune(args.cache, args.older_than, args.model)
    if args.json:
        print(json.dumps(got, indent=2))
    else:
        print(f"forgot {got['items']:,} items in {got['segments']} segment(s), {got['bytes'] / 2**20:,.1f} MB"
              + (f"; {got['derived_files']} thumbnail/map/index file(s), {got['derived_bytes'] / 2**20:,.1f} MB"
                 if "derived_files" in got else ""))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    report = _actions().doctor(args.cache)
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    print(f"Contrastive Lens {report['packages'].get('contrastive-lens') or '(source)'} on Python {report['python']}, "
          f"{report['platform']}")
    dev = report["devices"]
    gpus = ", ".join(f"{g['name']} ({g['memory_gb']} GB)" for g in dev["cuda"]) or "none"
    print(f"  torch build: {dev['torch_build']}; CUDA devices: {gpus}; Apple MPS: {'yes' if dev['mps'] else 'no'}; "
          f"CPU threads: {dev['cpu_threads']}")
    print("  packages: " + ", ".join(f"{k} {v}" for k, v in report["packages"].items() if v))
    qt = report["qt"]
    print(f"  Qt platform: {qt['QT_QPA_PLATFORM'] or 'default'}; display: {qt['display'] or 'none'}"
          + (f" ({qt['note']})" if qt["note"] else ""))
    print(f"  cache: {report['cache']['folder']} ({report['cache']['bytes'] / 2**20:,.1f} MB)")
    for m in report["missing"]:
        print(f"  missing: {m['what']} (for {m['for']}): {m['fix']}")
    if not report["missing"]:
        print("  nothing missing")
    return EXIT_OK


def _measure(args: argparse.Namespace, run: Any, as_json: Any, as_text: Any) -> int:
    """eval and diagnose: open the model, embed the gallery (cache first), measure, print."""
    cache = _cache(args)
    opened = _open(args, cache)
    with ProgressPrinter(args.quiet) as progress:
        got = run(opened.model, cache, progress.state)
    _summary(got.embedding, args.quiet)
    if got.embedding.cancelled:
        return _interrupted(got.embedding.embedded, "in the cache; run the same command again to continue")
    if not got.embedding.rows:
        return EXIT_FAILED
    if args.json:
        print(json.dumps(as_json(got), indent=2))
    else:
        as_text(got)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    actions = _actions()
    cache = _cache(args)
    first = _open(args, cache)
    second = actions.open_model(args.second, args.device, args.allow_pickle, cache)
    with ProgressPrinter(args.quiet) as progress:
        got = actions.compare(first.model, second.model, args.source, args.text, args.k, cache, progress.state,
                              allow_outside=args.allow_outside_files)
    if args.json:
        print(json.dumps(got.to_dict(), indent=2))
    else:
        print_comparison(got)
    return EXIT_OK


def _tissue(args: argparse.Namespace, run: Any, left_out: Any, as_text: Any, label: str = "left out") -> int:
    """tissue infer and counterfactual: open the model, run with progress, name what was left out, print."""
    cache = _cache(args)
    opened = _open(args, cache)
    with ProgressPrinter(args.quiet) as progress:
        got = run(opened.model, cache, progress.state)
    for line in left_out(got):
        print(f"{label}: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps(got.to_dict(), indent=1))
    else:
        as_text(got)
    return EXIT_OK


def cmd_tissue_infer(args: argparse.Namespace) -> int:
    actions = _actions()
    return _tissue(args, lambda model, cache, state: actions.infer_markers(
        model, args.he, args.reference, args.text, args.k, args.w, cache, state,
        allow_outside=args.allow_outside_files, target=args.target),
        lambda got: got.skipped, print_markers, "left out of the reference")


def edited_text(text: str, to: str | None, replace: list[str] | None) -> str:
    """The edited text: given whole, or the text with each OLD=NEW replaced (each OLD must occur)."""
    if to is not None:
        return to
    out = text
    for pair in replace or []:
        old, sep, new = pair.partition("=")
        if not sep or not old:
            raise ClensError(f"--replace takes OLD=NEW (got {pair!r})")
        if old not in out:
            raise ClensError(f"--replace: {old!r} is not in the text")
        out = out.replace(old, new)
    return out


def cmd_tissue_counterfactual(args: argparse.Namespace) -> int:
    actions = _actions()
    edited = edited_text(args.text, args.to, args.replace)
    return _tissue(args, lambda model, cache, state: actions.counterfactual(
        model, args.he, args.reference, args.text, edited, args.k, args.w, cache, state,
        allow_outside=args.allow_outside_files, target=args.target),
        lambda got: got.left_out, print_shift)


def cmd_tissue_heatmap(args: argparse.Namespace) -> int:
    slides = _actions()

    if not args.text and not args.query:
        print("clens tissue heatmap: give a query: --text T and/or --query FILE", file=sys.stderr)
        return EXIT_USAGE
    if not 0.0 <= args.opacity <= 1.0:
        print(f"clens tissue heatmap: --opacity is from 0 to 1 (got {args.opacity})", file=sys.stderr)
        return EXIT_USAGE
    for out in (args.png, args.scores):
        if out and not _out_file_ok("tissue heatmap", Path(out)):
            return EXIT_USAGE
    cache = _cache(args)
    opened = _open(args, cache)
    with ProgressPrinter(args.quiet) as progress:
        heat = slides.slide_heatmap(opened.model, args.slide, args.text, args.query, args.weight, cache,
                                    progress.state, args.patch, skip_background=not args.all_tiles)
    slides.save_heat(heat, args.png, args.scores, args.opacity)
    for line in heat.embedding.failed:
        print(f"tile {line}", file=sys.stderr)
    for line in heat.embedding.channel_notes:
        print(f"note: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps(heat.to_dict(), indent=1))
    else:
        e = heat.embedding
        print(f"{e.path}: {e.description}; {e.from_cache} of {e.rows} bands from the cache")
        for t in heat.top(5):
            print(f"  {t['score']:.4f}  tile at x={t['x']}, y={t['y']}")
        for out in (args.png, args.scores):
            if out:
                print(f"wrote {out}", file=sys.stderr)
    if heat.embedding.cancelled:
        print("clens tissue heatmap: interrupted; the tiles embedded so far are cached", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def cmd_tissue_make_slide(args: argparse.Namespace) -> int:
    if args.size < 64:
        raise ClensError("--size is at least 64 px")
    files = _actions().make_slide(args.folder, args.name, args.size, args.seed)
    for p in (files.he, files.mif, files.mask, files.meta):
        print(p)
    return EXIT_OK


def cmd_tissue_channels(args: argparse.Namespace) -> int:
    """Exit 0 when every stack can be read by the model, 3 (failed) when one cannot."""
    actions = _actions()
    opened = _open(args)
    got = actions.check_channels(opened.model, args.stacks)
    ok = all(m is not None and not m.missing or (m is None and "taken in order" in why) for _p, m, why in got)
    if args.json:
        print(json.dumps([{"file": p, "readable": m is not None and not m.missing or "taken in order" in why,
                           "renamed": dict(m.renamed) if m else {}, "ignored": list(m.extra) if m else [],
                           "missing": list(m.missing) if m else [], "note": why} for p, m, why in got], indent=1))
    else:
        for path, match, why in got:
            print(path)
            for line in (match.describe() if match else []) or ([why] if why else ["every channel by its own name"]):
                print(f"  {line}")
    return EXIT_OK if ok else EXIT_FAILED


def cmd_eval(args: argparse.Namespace) -> int:
    actions = _actions()
    return _measure(args, lambda model, cache, state: actions.evaluate(model, args.manifest, args.template, cache,
                                                                       state, allow_outside=args.allow_outside_files),
                    lambda ev: ev.to_dict(), lambda ev: print_evaluation(ev.retrieval, ev.zero_shot))


def cmd_diagnose(args: argparse.Namespace) -> int:
    actions = _actions()
    return _measure(args, lambda model, cache, state: actions.diagnose(model, args.source, args.k, cache, state,
                                                                       allow_outside=args.allow_outside_files),
                    lambda dg: dg.report, lambda dg: print_diagnosis(dg.report))


def cmd_explain(args: argparse.Namespace) -> int:
    actions = _actions()
    if not args.text and not args.query:
        print("clens explain: give the query: --text T or --query FILE", file=sys.stderr)
        return EXIT_USAGE
    if (args.target is None) == (args.target_text is None):
        print("clens explain: give one target: a file, or --target-text T", file=sys.stderr)
        return EXIT_USAGE
    if args.png and not _out_file_ok("explain", Path(args.png)):
        return EXIT_USAGE
    opened = _open(args)
    with ProgressPrinter(args.quiet) as progress:
        got = actions.explain(opened.model, args.target, tuple(args.text), tuple(args.query), args.target_text,
                              progress.state)
    print_failures(got.failures)
    if got.failures:
        print("clens explain: the query could not be embedded", file=sys.stderr)
        return EXIT_FAILED
    if args.png:
        actions.save_picture(got, args.png, args.opacity)
        print(f"wrote {args.png}", file=sys.stderr)
    if args.json:
        print(json.dumps(got.to_dict(), indent=1))
    else:
        print_explained(got)
    return EXIT_OK


COMMANDS = {"info": cmd_info, "embed": cmd_embed, "train": cmd_train, "demo": cmd_demo,
            "doctor": cmd_doctor, "cache info": cmd_cache_info, "cache prune": cmd_cache_prune, "index build": cmd_index_build, "search": cmd_search, "project": cmd_project, "explain": cmd_explain, "eval": cmd_eval, "diagnose": cmd_diagnose, "compare": cmd_compare,
            "tissue infer": cmd_tissue_infer, "tissue counterfactual": cmd_tissue_counterfactual,
            "tissue channels": cmd_tissue_channels, "tissue heatmap": cmd_tissue_heatmap,
            "tissue make-slide": cmd_tissue_make_slide}
