#!/usr/bin/env bash
# Regenerate docs/screenshot.png: the real window under Xvfb, opened on the bundled demo as `clens` opens it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work=$(mktemp -d)
CLENS_CACHE_DIR="$work/cache" XDG_CONFIG_HOME="$work/config" \
  xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/clens --screenshot docs/screenshot.png
rm -rf "$work"
