#!/usr/bin/env bash
# Start the built bundle as a person would: copied away from the source tree, no virtualenv, a fresh home,
# under a virtual X display; it must open the demo window and save a screenshot (looked at by a person).
# Prints the start time to the demo window and the bundle's size.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x dist/clens/clens ] || { echo "no bundle: run bash packaging/build_bundle.sh first" >&2; exit 2; }
where=$(mktemp -d)
cp -r dist/clens "$where/"
home=$(mktemp -d)
run() { env -i HOME="$home" PATH=/usr/bin:/bin LANG=C.UTF-8 "$where/clens/clens" "$@"; }
# headless first: the demo model (with its frozen text encoder) opens and embeds a sentence
demo_model=$(run demo | head -1)
run info "$demo_model" > /dev/null
run embed "$demo_model" --text "a crimson disc" --out "$where/check.npy" --quiet
python3 -c "import sys; d = open(sys.argv[1], 'rb').read(); assert d[:6] == b'\x93NUMPY', 'no vectors'" "$where/check.npy"
shot="$where/bundle-demo.png"
start=$(date +%s.%N)
env -i HOME="$home" PATH=/usr/bin:/bin LANG=C.UTF-8 \
  xvfb-run -a -s "-screen 0 1400x900x24" "$where/clens/clens" --screenshot "$shot" | tee "$where/out.txt"
end=$(date +%s.%N)
[ -s "$shot" ] || { echo "the bundle did not show its window" >&2; exit 1; }
grep -q "^window: .*shapes-and-sounds" "$where/out.txt" || { echo "the window opened without the demo model" >&2; exit 1; }
cp "$shot" docs/bundle.png
size_mb=$(du -sm "$where/clens" | cut -f1)
seconds=$(python3 -c "print(round($end - $start, 1))")
mkdir -p benchmarks/results
printf '{"machine": "%s, %s cores", "size_mb": %s, "launch_to_screenshot_s": %s}\n' "$(uname -m)" "$(nproc)" \
  "$size_mb" "$seconds" > benchmarks/results/bundle.json
echo "bundle size: ${size_mb} MB; launch to the demo's screenshot (first start: demo gallery generated): ${seconds} s"
echo "screenshot: docs/bundle.png; figures: benchmarks/results/bundle.json (bash benchmarks/run.sh writes RESULTS.md)"
