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
from cl_core.device import DEVICE_CHOICES
from cl_core.errors import ClensError
from cl_core.modality import Modality
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
    return parser


def _progress_printer(quiet: bool) -> TaskState:
    def show(p: Progress) -> None:
        if not quiet and p.total:
            print(f"\r{p.text} {p.done}/{p.total}", end="", file=sys.stderr, flush=True)

    return TaskState(on_progress=show)


def cmd_info(args: argparse.Namespace) -> int:
    from cl_core.checkpoint import open_checkpoint

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
    from cl_core.checkpoint import open_checkpoint
    from cl_core.embedding import embed_paths

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
    from cl_core.training import load_recipe, train

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
    from cl_core.demo import DEMOS, ensure_demo_gallery

    demo = DEMOS[args.name]
    if not (demo.model / "clens_config.json").is_file():
        print(f"the demo model is missing from {demo.model}", file=sys.stderr)
        return EXIT_FAILED
    print(demo.model)
    for path in ensure_demo_gallery(name=args.name):
        print(path)
    return EXIT_OK


COMMANDS = {"info": cmd_info, "embed": cmd_embed, "train": cmd_train, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.verb](args)
    except ClensError as exc:
        print(f"clens {args.verb}: {exc}", file=sys.stderr)
        return EXIT_FAILED
