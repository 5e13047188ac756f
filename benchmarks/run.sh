#!/usr/bin/env bash
# One command for the benchmarks: embedding throughput, search on real vectors (50k MiniLM sentences, and 1M
# spectrum-matched), search on synthetic clusters (100k and 1M x 512), a drop in the window,
# projections, the window (launch, heartbeat), the results grid (1,000 thumbnails), then RESULTS.md.
# Arguments are passed to the search benchmark, e.g. `bash benchmarks/run.sh --sizes 100000` for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python benchmarks/bench_embed.py
.venv/bin/python benchmarks/bench_relevance.py
.venv/bin/python benchmarks/bench_real.py --synthetic 1000000
.venv/bin/python benchmarks/bench_eval.py
.venv/bin/python benchmarks/bench_explain.py
.venv/bin/python benchmarks/bench_biomarkers.py
.venv/bin/python benchmarks/bench_counterfactual.py
.venv/bin/python benchmarks/bench_slide.py
.venv/bin/python benchmarks/bench_search.py "$@"
.venv/bin/python benchmarks/bench_drop.py
.venv/bin/python benchmarks/bench_projection.py
.venv/bin/python benchmarks/bench_window.py
.venv/bin/python benchmarks/bench_thumbs.py
.venv/bin/python benchmarks/bench_ray.py
.venv/bin/python benchmarks/report.py
