#!/usr/bin/env bash
# Rebuild the bundled demo models from their recipes (about 5 minutes each on a 2-core CPU).
# shapes & sounds: info_nce. Synthetic tissue: info_nce, symile and gram, the best kept, all compared in its card.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work=$(mktemp -d)
.venv/bin/clens train resources/recipes/shapes_sounds.toml --out "$work/shapes_sounds"
for obj in info_nce symile gram; do
  .venv/bin/clens train "resources/recipes/tissue_$obj.toml" --out "$work/tissue_$obj"
done
.venv/bin/python - "$work" <<'PY'
import json, shutil, sys
from pathlib import Path
import numpy as np
from cl_core.training import add_comparison
work = Path(sys.argv[1])
demo = Path("resources/demo")
def install(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("clens_config.json", "model.safetensors", "model_card.json", "MODEL_CARD.md"):
        shutil.copy(src / name, dst / name)
install(work / "shapes_sounds", demo / "shapes_sounds")
cards = {o: json.loads((work / f"tissue_{o}" / "model_card.json").read_text()) for o in ("info_nce", "symile", "gram")}
best = max(cards, key=lambda o: np.mean([m["R@10"] for m in cards[o]["heldout_metrics"]["all"].values()]))
install(work / f"tissue_{best}", demo / "tissue")
add_comparison(demo / "tissue", cards)
print("tissue demo: kept", best)
PY
rm -rf "$work"
