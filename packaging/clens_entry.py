"""The bundle's entry point: `clens` (the window on the demo with no arguments, or any verb)."""

import multiprocessing
import sys

from cl_core.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # decoder worker processes re-enter the frozen executable
    sys.exit(main())
