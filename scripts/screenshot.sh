#!/usr/bin/env bash
# Regenerate docs/screenshot.png (the window as `clens` opens it) and docs/search.png (the demo gallery searched).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work=$(mktemp -d)
CLENS_CACHE_DIR="$work/cache" XDG_CONFIG_HOME="$work/config" \
  xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/clens --screenshot docs/screenshot.png
CLENS_CACHE_DIR="$work/cache" XDG_CONFIG_HOME="$work/config2" \
  xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/clens --gallery demo:shapes_sounds --search "a crimson disc" \
  --screenshot docs/search.png
rm -rf "$work"
