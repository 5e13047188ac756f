"""`clens`: one parser for the window and the headless verbs. Each verb calls one function of
`cl_core.actions` and formats its result (text, or JSON with --json).

`clens` alone, `clens MODEL [FILES...]` and `clens gui ...` open the window (the `gui` front end is found
through the `contrastive_lens.frontends` entry point, so the core never imports the GUI package).

Exit codes: 0 all went well; 1 some inputs failed (the rest were written); 2 usage error;
3 nothing could be done (the model did not load, or no input could be embedded); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cl_core.cli.commands import COMMANDS, EXIT_FAILED, EXIT_USAGE
from cl_core.cli.parser import VERBS, build_parser
from cl_core.errors import ClensError

__all__ = ["COMMANDS", "VERBS", "build_parser", "main"]


def _route(argv: list[str]) -> list[str]:
    """No verb means the window: `clens`, `clens MODEL`, `clens --gallery demo:tissue`."""
    if not argv or (argv[0] not in VERBS and argv[0] not in ("-h", "--help")):
        return ["gui", *argv]
    return argv


def main(argv: Sequence[str] | None = None, gui: Callable[[argparse.Namespace], int] | None = None) -> int:
    """`gui` runs the window for `clens gui`; by default the installed front end's entry point."""
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is printed escaped, never a crash
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(_route(list(sys.argv[1:] if argv is None else argv)))
    verb = {"index": f"index {getattr(args, 'index_verb', '')}", "cache": f"cache {getattr(args, 'cache_verb', '')}",
            "tissue": f"tissue {getattr(args, 'tissue_verb', '')}"}.get(args.verb, args.verb)
    try:
        if args.verb == "gui":
            return (gui or _installed_gui())(args)
        return COMMANDS[verb](args)
    except ClensError as exc:
        print(f"clens {verb}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"clens {verb}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `clens demo | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


def _installed_gui() -> Callable[[argparse.Namespace], int]:
    from importlib.metadata import entry_points

    found = entry_points(group="contrastive_lens.frontends", name="gui")
    if not found:
        def missing(_args: argparse.Namespace) -> int:
            print("clens: the window is not installed (pip install contrastive-lens); the headless verbs "
                  "work: clens --help", file=sys.stderr)
            return EXIT_USAGE

        return missing
    return next(iter(found)).load()
