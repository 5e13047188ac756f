#!/usr/bin/env bash
# Regenerate the pictures in docs/: the window as `clens` opens it, the demo gallery searched (results grid),
# the tissue demo searched, the gallery's UMAP map with a query drawn in, why a top result matched, the
# gallery's geometry (Diagnostics), the model evaluated on it (Evaluation), and the tissue model beside it
# (Compare).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work=$(mktemp -d)
shot() {  # shot NAME ARGS...: a fresh settings folder each time, one shared cache
  local name=$1; shift
  CLENS_CACHE_DIR="$work/cache" XDG_CONFIG_HOME="$work/config-$name" \
    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/clens "$@" --screenshot "docs/$name.png"
}
shot screenshot
shot search --gallery demo:shapes_sounds --search "a crimson disc"
shot tissue --gallery demo:tissue --search "tumour necrosis present, poorly differentiated"
shot projection --gallery demo:shapes_sounds --search "a crimson disc" --project umap
shot projection-colour --gallery demo:shapes_sounds --project pca --colour size
shot why --gallery demo:shapes_sounds --search "a red circle" --explain 1
shot diagnostics --gallery demo:shapes_sounds --diagnose
shot evaluation --gallery demo:shapes_sounds --evaluate
shot compare --gallery demo:shapes_sounds --search "a red circle" --compare resources/demo/tissue
shot why-tissue --gallery demo:tissue --search "tumour necrosis present, poorly differentiated" --explain 1
shot dark --gallery demo:tissue --search "tumour necrosis present, poorly differentiated" --theme dark
CLENS_CACHE_DIR="$work/cache" XDG_CONFIG_HOME="$work/config-markers" \
  xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/shot_markers.py docs/markers.png
CLENS_CACHE_DIR="$work/cache" XDG_CONFIG_HOME="$work/config-what-if" \
  xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/shot_markers.py docs/what-if.png what-if
CLENS_CACHE_DIR="$work/cache" XDG_CONFIG_HOME="$work/config-slide" \
  xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/shot_slide.py docs/slide.png "$work/slide"
CLENS_CACHE_DIR="$work/cache" XDG_CONFIG_HOME="$work/config-channels" \
  xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/shot_channels.py docs/channels.png
rm -rf "$work"
