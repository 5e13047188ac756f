#!/usr/bin/env bash
# Build the one-folder desktop bundle: dist/clens/ (the app, its demo, Qt, torch), plus the desktop entry and
# icon beside it. Usage: bash packaging/build_bundle.sh   (then: bash packaging/check_bundle.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/pip install -q "pyinstaller>=6.10"
# the app as a wheel would install it (the .venv holds an editable install, whose import hook PyInstaller
# cannot follow): cl_core, clens_app and clens_resources side by side, analysed from there
rm -rf build/bundle-src
.venv/bin/pip install -q --no-deps --no-build-isolation --target build/bundle-src .
.venv/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/clens.spec
cp packaging/contrastive-lens.desktop resources/icons/clens.png dist/clens/
du -sh dist/clens
