#!/usr/bin/env bash
# Rebuild the bundled demo models from their recipes on a 2-core CPU (shapes & sounds about 5 minutes,
# each tissue objective about 17): bash scripts/train_demos.sh [shapes_sounds] [tissue]  (default: both)
# shapes & sounds: info_nce. Synthetic tissue: info_nce, symile and gram, the best kept, all compared in its card.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
demos=("$@")
[ ${#demos[@]} -eq 0 ] && demos=(shapes_sounds tissue)
work=$(mktemp -d)
for demo in "${demos[@]}"; do
  case "$demo" in
    shapes_sounds) .venv/bin/clens train resources/recipes/shapes_sounds.toml --out "$work/shapes_sounds" ;;
    tissue)
      for obj in info_nce symile gram; do
        .venv/bin/clens train "resources/recipes/tissue_$obj.toml" --out "$work/tissue_$obj"
      done ;;
    *) echo "unknown demo: $demo (shapes_sounds or tissue)" >&2; exit 2 ;;
  esac
done
.venv/bin/python - "$work" <<'PY'
import json, shutil, sys
from pathlib import Path
import numpy as np
from cl_core.train.trainer import add_comparison
work = Path(sys.argv[1])
demo = Path("resources/demo")
def install(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("clens_config.json", "model.safetensors", "model_card.json", "MODEL_CARD.md"):
        shutil.copy(src / name, dst / name)
if (work / "shapes_sounds").is_dir():
    install(work / "shapes_sounds", demo / "shapes_sounds")
if (work / "tissue_gram").is_dir():
    cards = {o: json.loads((work / f"tissue_{o}" / "model_card.json").read_text()) for o in ("info_nce", "symile", "gram")}
    best = max(cards, key=lambda o: np.mean([m["R@10"] for m in cards[o]["heldout_metrics"]["all"].values()]))
    install(work / f"tissue_{best}", demo / "tissue")
    add_comparison(demo / "tissue", cards)
    print("tissue demo: kept", best)
PY
rm -rf "$work"
