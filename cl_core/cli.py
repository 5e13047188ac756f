"""`clens` headless verbs. Stable interface: other tools and tests call it.

Exit codes: 0 all went well; 1 some inputs failed (the rest were written); 2 usage error;
3 nothing could be done (the model did not load, or no input could be embedded).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cl_core.atomic import save_npy_atomic, write_text_atomic
from cl_core.errors import ClensError
from cl_core.modality import Modality
from cl_core.models.device import DEVICE_CHOICES
from cl_core.task import Progress, TaskState

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3


def _modality_arg(value: str) -> Modality:
    try:
        return Modality.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="checkpoint folder or file (native, Hugging Face, open_clip, OpenAI CLIP)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default=None, help="force a device (default: best available)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow .bin/.pt weights where no safetensors exist (loaded weights-only, never code)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clens", description="Contrastive Lens: run with no arguments for the app.")
    sub = parser.add_subparsers(dest="verb", required=True)
    info = sub.add_parser("info", help="describe a checkpoint")
    _add_model_args(info)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    embed = sub.add_parser("embed", help="embed files and texts into an .npy of L2-normalised float32 rows")
    _add_model_args(embed)
    embed.add_argument("inputs", nargs="*", help="files or folders")
    embed.add_argument("--out", required=True, help="output .npy; a .json beside it maps rows to inputs")
    embed.add_argument("--modality", type=_modality_arg, default=None, help="read every file as this modality")
    embed.add_argument("--text", action="append", default=[], help="a text to embed (repeatable)")
    embed.add_argument("--batch-size", type=int, default=None)
    embed.add_argument("--quiet", action="store_true", help="no progress on stderr")
    demo = sub.add_parser("demo", help="write a demo gallery (if needed) and print the demo model and gallery paths")
    demo.add_argument("name", nargs="?", default="shapes_sounds", choices=["shapes_sounds", "tissue"])
    tr = sub.add_parser("train", help="train a native checkpoint from a TOML recipe (resumes if interrupted)")
    tr.add_argument("recipe", help="recipe .toml ([model], [data], [train])")
    tr.add_argument("--out", required=True, help="output folder: checkpoint, model card, resumable state")
    tr.add_argument("--device", choices=DEVICE_CHOICES, default=None)
    tr.add_argument("--quiet", action="store_true")
    ix = sub.add_parser("index", help="gallery indexes").add_subparsers(dest="index_verb", required=True)
    build = ix.add_parser("build", help="embed a gallery (cached) and write an index folder")
    _add_model_args(build)
    build.add_argument("source", help="a folder, a .csv/.tsv/.parquet manifest, or demo:NAME")
    build.add_argument("--out", required=True, help="index folder (replaced atomically if it exists)")
    build.add_argument("--kind", choices=["auto", "flat", "hnsw", "ivfpq", "binary"], default="auto",
                       help="index type (default: by gallery size; the choice and its measured recall are printed)")
    build.add_argument("--json", action="store_true")
    _add_cache_args(build)
    se = sub.add_parser("search", help="search an index folder with files and/or texts (several are fused)")
    se.add_argument("index", help="index folder written by `clens index build`")
    se.add_argument("--query", action="append", default=[], help="a query file (repeatable)")
    se.add_argument("--text", action="append", default=[], help="a query text (repeatable)")
    se.add_argument("--target-modality", type=_modality_arg, default=None,
                    help="search only this modality (default: all, merged by calibrated score)")
    se.add_argument("-k", type=int, default=10)
    se.add_argument("--fusion", choices=["mean", "symile", "gram"], default="mean",
                    help="how several query items combine (default: weighted mean)")
    se.add_argument("--weight", type=float, action="append", default=None,
                    help="weight of each query item, in order: files first, then texts")
    se.add_argument("--min-z", type=float, default=None, help="drop hits below this calibrated score (z)")
    se.add_argument("--min-score", type=float, default=None, help="drop hits below this raw score")
    se.add_argument("--model", default=None, help="the model (default: the one recorded in the index)")
    se.add_argument("--device", choices=DEVICE_CHOICES, default=None)
    se.add_argument("--allow-pickle", action="store_true")
    se.add_argument("--json", action="store_true")
    _add_cache_args(se)
    ev = sub.add_parser("eval", help="Recall@K both ways per modality pair, and zero-shot classification")
    _add_model_args(ev)
    ev.add_argument("manifest", help="a paired manifest (.csv/.tsv/.parquet), a folder, or demo:NAME")
    ev.add_argument("--template", action="append", default=None,
                    help="zero-shot prompt template with {} for the label (repeatable)")
    ev.add_argument("--json", action="store_true")
    _add_cache_args(ev)
    dg = sub.add_parser("diagnose", help="geometry of the embedding space on a gallery")
    _add_model_args(dg)
    dg.add_argument("source", help="a folder, a manifest, or demo:NAME")
    dg.add_argument("-k", type=int, default=10, help="neighbourhood size for hubness and agreement")
    dg.add_argument("--json", action="store_true")
    _add_cache_args(dg)
    return parser


def _add_cache_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", default=None, help="embedding cache folder (default: the user cache folder)")
    p.add_argument("--no-cache", action="store_true", help="embed everything again and store nothing")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _cache(args: argparse.Namespace):  # -> EmbeddingCache | None
    from cl_core.embed.cache import EmbeddingCache

    return None if args.no_cache else EmbeddingCache(args.cache)


def _progress_printer(quiet: bool) -> TaskState:
    def show(p: Progress) -> None:
        if not quiet and p.total:
            print(f"\r{p.text} {p.done}/{p.total}", end="", file=sys.stderr, flush=True)

    return TaskState(on_progress=show)


def cmd_info(args: argparse.Namespace) -> int:
    from cl_core.models.open import open_checkpoint

    model = open_checkpoint(args.model, device=args.device, allow_pickle=args.allow_pickle)
    info = model.info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return EXIT_OK
    print(f"{info['name']}  ({info['format']})")
    print(f"  modalities : {', '.join(info['modalities'])}")
    print(f"  embed_dim  : {info['embed_dim']}")
    print(f"  parameters : {info['parameters']:,}")
    print(f"  logit scale: {info['logit_scale']}" + (f", bias {info['logit_bias']}" if info["logit_bias"] is not None else ""))
    print(f"  device     : {info['device']}")
    for mod, pre in info["preprocessing"].items():
        print(f"  {mod:<11}: {json.dumps(pre, default=str)}")
    return EXIT_OK


def cmd_embed(args: argparse.Namespace) -> int:
    from cl_core.embed.items import embed_paths
    from cl_core.models.open import open_checkpoint

    if not args.inputs and not args.text:
        print("clens embed: give input files/folders or --text", file=sys.stderr)
        return EXIT_USAGE
    model = open_checkpoint(args.model, device=args.device, allow_pickle=args.allow_pickle)
    state = _progress_printer(args.quiet)
    result = embed_paths(model, args.inputs, args.text, args.modality, state, args.batch_size)
    if not args.quiet:
        print(file=sys.stderr)
    for f in result.failures:
        print(f"failed: {f.source}: {f.reason}", file=sys.stderr)
    out = Path(args.out)
    if len(result.items):
        save_npy_atomic(out, result.vectors.astype(np.float32))
        manifest = {
            "model": model.info()["name"], "format": model.format, "embed_dim": model.embed_dim,
            "rows": [{"row": i, "source": it.source, "modality": it.modality.value,
                      **({"text": it.data} if it.modality is Modality.TEXT else {})}
                     for i, it in enumerate(result.items)],
            "failures": [{"source": f.source, "reason": f.reason, "stage": f.stage} for f in result.failures],
        }
        write_text_atomic(out.with_suffix(".json"), json.dumps(manifest, indent=2))
        print(f"wrote {len(result.items)} embeddings ({model.embed_dim}-d) to {out}", file=sys.stderr)
    if not result.items:
        print("nothing was embedded", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_PARTIAL if result.failures else EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from cl_core.train.trainer import load_recipe, train

    recipe = load_recipe(args.recipe)
    state = _progress_printer(args.quiet)
    state._on_message = lambda text: print(text, file=sys.stderr)
    card = train(recipe, Path(args.out), state, args.device)
    if not args.quiet:
        print(file=sys.stderr)
    for subset, pairs in card["heldout_metrics"].items():
        worst = min(pairs.items(), key=lambda kv: kv[1]["R@5"])
        print(f"{subset}: lowest held-out R@5 {worst[1]['R@5']:.3f} ({worst[0]}); card: {Path(args.out) / 'MODEL_CARD.md'}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from cl_core.demo.galleries import DEMOS, ensure_demo_gallery

    demo = DEMOS[args.name]
    if not (demo.model / "clens_config.json").is_file():
        print(f"the demo model is missing from {demo.model}", file=sys.stderr)
        return EXIT_FAILED
    print(demo.model)
    for path in ensure_demo_gallery(name=args.name):
        print(path)
    return EXIT_OK


def _embed_source(args: argparse.Namespace, source: str):
    """Open the model and the gallery, embed it (cache first); print what failed."""
    from cl_core.embed.gallery import embed_gallery
    from cl_core.embed.sources import open_source
    from cl_core.models.open import open_checkpoint

    model = open_checkpoint(args.model, device=args.device, allow_pickle=args.allow_pickle)
    gallery = open_source(source)
    state = _progress_printer(args.quiet)
    emb = embed_gallery(model, gallery, _cache(args), state)
    if not args.quiet:
        print(file=sys.stderr)
    _print_failures(emb.failures)
    if not args.quiet:
        print(f"{len(emb.rows)} items ({emb.from_cache} from the cache, {emb.embedded} embedded now), "
              f"{len(emb.failures)} failed or quarantined", file=sys.stderr)
    return model, emb


def _print_failures(failures) -> None:  # noqa: ANN001 - list[Failure]
    for f in failures:
        print(f"{'quarantined' if f.stage == 'quarantine' else 'failed'}: {f.source}: {f.reason}", file=sys.stderr)


def cmd_index(args: argparse.Namespace) -> int:
    from cl_core.search import store
    from cl_core.search.build import index_embedding

    model, emb = _embed_source(args, args.source)
    if not emb.rows:
        print("nothing was embedded; no index written", file=sys.stderr)
        return EXIT_FAILED
    index_set = index_embedding(model, emb, args.kind, _progress_printer(args.quiet))
    store.save(index_set, args.out)
    if args.json:
        print(json.dumps({"index": str(args.out), "count": len(index_set.rows), "parts": index_set.summary(),
                          "failures": [{"source": f.source, "reason": f.reason, "stage": f.stage}
                                       for f in emb.failures]}, indent=2))
    else:
        if not args.quiet:
            print(file=sys.stderr)
        print(f"index written to {args.out}")
        print(store.describe(index_set))
    return EXIT_PARTIAL if emb.failures else EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from cl_core.embed.items import embed_paths
    from cl_core.models.open import open_checkpoint
    from cl_core.search.build import open_index
    from cl_core.search.query import search
    from cl_core.search.store import read_manifest

    if not args.query and not args.text:
        print("clens search: give --query FILE and/or --text T", file=sys.stderr)
        return EXIT_USAGE
    recorded = read_manifest(Path(args.index))["model"]
    model = open_checkpoint(args.model or recorded["source"], device=args.device, allow_pickle=args.allow_pickle)
    index_set = open_index(args.index, model, _cache(args))
    res = embed_paths(model, args.query, args.text, state=TaskState())
    _print_failures(res.failures)
    if res.failures or not len(res.items):
        print("clens search: a query item could not be embedded; nothing searched", file=sys.stderr)
        return EXIT_FAILED
    hits = search(index_set, res.vectors, args.target_modality, args.k, args.fusion, args.weight,
                  args.min_z, args.min_score)
    if args.json:
        print(json.dumps({"query": [it.source for it in res.items], "fusion": args.fusion,
                          "hits": [h.to_dict() for h in hits]}, indent=2))
        return EXIT_OK
    if not hits:
        print("nothing relevant (no hit passes the threshold)")
    for h in hits:
        what = h.text if h.text else h.source
        print(f"{h.rank:>3}  {h.score:+.4f}  z={h.z:5.2f}  {h.modality:<12} {h.sample_id}  {what}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from cl_core.analysis.evaluation import DEFAULT_TEMPLATES, paired_report, zero_shot

    model, emb = _embed_source(args, args.manifest)
    if not emb.rows:
        return EXIT_FAILED
    retrieval = paired_report(emb)
    zs = zero_shot(model, emb, args.template or DEFAULT_TEMPLATES)
    report = {"retrieval": retrieval, "zero_shot": zs, "items": len(emb.rows), "failures": len(emb.failures)}
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    if not retrieval:
        print("no paired samples (rows sharing an id across modalities): retrieval not evaluated")
    for pair, r in retrieval.items():
        print(f"{pair:<28} R@1 {r['R@1']:.3f}  R@5 {r['R@5']:.3f}  R@10 {r['R@10']:.3f}  "
              f"median rank {r['median_rank']:g}  (n={r['n']})")
    for modality, z in zs.items():
        print(f"zero-shot {modality}: accuracy {z['accuracy']:.3f} over {len(z['labels'])} labels (n={z['n']})")
        width = max(len(label) for label in z["labels"])
        print(" " * (width + 2) + " ".join(f"{i:>3}" for i in range(len(z["labels"]))))
        for i, (label, row) in enumerate(zip(z["labels"], z["confusion"], strict=True)):
            print(f"{label:>{width}} {i:>1} " + " ".join(f"{v:>3}" for v in row))
    return EXIT_OK


def cmd_diagnose(args: argparse.Namespace) -> int:
    from cl_core.analysis.diagnostics import diagnose

    _model, emb = _embed_source(args, args.source)
    if not emb.rows:
        return EXIT_FAILED
    report = diagnose(emb, args.k)
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    print("items: " + ", ".join(f"{m} {n}" for m, n in report["counts"].items()))
    for m, d in report["per_modality"].items():
        print(f"{m:<12} effective rank {d['effective_rank']}  uniformity {d['uniformity']}")
    for m, d in report["modality_bias"].items():
        print(f"{m:<12} top-1 neighbour of its own modality {d['own_modality_top1']:.3f} "
              f"(its share of the pool {d['own_share_of_pool']:.3f})")
    for pair, d in report["pairs"].items():
        line = f"{pair:<24} gap {d['centroid_distance']:.3f}  probe accuracy {d['linear_probe_accuracy']:.3f}"
        if "alignment" in d:
            line += (f"  alignment {d['alignment']:.3f}  neighbour agreement intra "
                     f"{d['neighbour_agreement']['intra']:.3f} inter {d['neighbour_agreement']['inter']:.3f}")
        print(line)
        for key, h in d.items():
            if key.startswith("hubness"):
                print(f"    {key}: skew {h['skewness']:.2f}, never retrieved {h['never_retrieved']:.2f}, "
                      f"max N_{h['k']} {h['max_occurrence']}")
    return EXIT_OK


COMMANDS = {"info": cmd_info, "embed": cmd_embed, "train": cmd_train, "demo": cmd_demo, "index": cmd_index,
            "search": cmd_search, "eval": cmd_eval, "diagnose": cmd_diagnose}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.verb](args)
    except ClensError as exc:
        print(f"clens {args.verb}: {exc}", file=sys.stderr)
        return EXIT_FAILED
