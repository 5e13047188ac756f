"""The `clens` entry point: no arguments opens the app; verbs run headless through cl_core.cli.

Kept outside cl_core so the core never imports the GUI; Qt is imported only when the app starts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("gui", "open") or args[0].startswith("--"):
        from app.main import run_app

        return run_app(args[1:] if args and args[0] in ("gui", "open") else args)
    from cl_core.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
