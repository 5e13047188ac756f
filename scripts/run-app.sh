#!/usr/bin/env bash
# One command for a newcomer: set up, then open Contrastive Lens on its bundled demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/clens "$@"
