#!/usr/bin/env bash
# Regenerate docs/screenshot.png: the real window under Xvfb, a tiny model and sample files made by the
# test helpers (the bundled demo model replaces them once it exists).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work=$(mktemp -d)
.venv/bin/python - "$work" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "tests")
import media, tiny_models
w = Path(sys.argv[1])
tiny_models.make_native(w / "model")
(w / "media").mkdir()
media.make_media(w / "media")
PY
m="$work/media"
files=("$m/red.png" "$m/photo.jpg" "$m/gray.gif" "$m/tone.wav" "$m/stereo.flac" "$m/mif.ome.tif" "$m/caption.txt" "$m/prompts.csv" "$m/truncated.png" "$m/fake.eps")
XDG_CONFIG_HOME="$work/config" xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/clens gui "$work/model" "${files[@]}" --screenshot docs/screenshot.png
rm -rf "$work"
