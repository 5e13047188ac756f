#!/usr/bin/env bash
# One command for the tests: set up, then lint, type-check and run the test suite (Qt offscreen).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check cl_core app tests benchmarks
.venv/bin/mypy
.venv/bin/lint-imports --config pyproject.toml  # the layers of cl_core; front ends only through actions
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
