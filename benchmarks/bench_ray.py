"""The Ray engine against the local job on the same gallery and machine: a gallery of ~3,000 items (image,
sound and caption per sample) embedded from an empty cache by the local job (decoder processes + one model)
and by `--engine ray` on a local Ray with one actor per CPU; the ratio is Ray's overhead on one machine
(its use is more machines, which this benchmark cannot show). Writes benchmarks/results/ray.json.
Heavy imports stay inside functions (decoder processes re-import this file)."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "ray.json"
ROOT = Path(__file__).resolve().parent.parent


def main(samples: int = 1000) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import ray

    from cl_core import actions
    from media import make_gallery

    work = Path(tempfile.mkdtemp(prefix="clens-ray-"))
    gallery = make_gallery(work / "g", n=samples) / "manifest.csv"
    model = actions.open_model(actions.demo_files("shapes_sounds").model).model
    figures: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "items": samples * 3}
    t = time.perf_counter()
    local = actions.build_index(model, gallery, work / "local", "flat", actions.EmbeddingCache(work / "c1"))
    figures["local s"] = round(time.perf_counter() - t, 2)
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    t = time.perf_counter()
    on_ray = actions.build_index(model, gallery, work / "ray", "flat", actions.EmbeddingCache(work / "c2"),
                                 engine="ray")
    figures["ray s"] = round(time.perf_counter() - t, 2)
    figures["ray actors"] = int(ray.available_resources().get("CPU", 0)) or os.cpu_count()
    ray.shutdown()
    assert local.index is not None and on_ray.index is not None
    figures["items indexed"] = len(on_ray.index.rows)
    figures["ray / local"] = round(figures["ray s"] / figures["local s"], 2)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
