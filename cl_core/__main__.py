"""`python -m cl_core` is `clens`."""

import sys

from cl_core.cli import main

sys.exit(main())
