"""The wheel carries everything the app needs at run time: built, installed (not editable) into another folder,
and run from a third one, `clens demo` and `clens info` on the demo work and read their files from the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_runs_the_demo_from_anywhere(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            str(ROOT), "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("contrastive_lens-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.startswith("contrastive_lens-")} == \
        {"cl_core", "clens_app", "clens_resources"}  # no top-level `app`
    for needed in ("clens_resources/vocab/bpe_simple_vocab_16e6.txt.gz", "clens_resources/styles/lens.qss",
                   "clens_resources/demo/shapes_sounds/model.safetensors",
                   "clens_resources/demo/tissue/clens_config.json", "clens_resources/icons/clens.png"):
        assert needed in names
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "CLENS_CACHE_DIR": str(tmp_path / "cache")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=elsewhere, env=env, capture_output=True, text=True,
                              timeout=300)

    where = run("-c", "import cl_core, cl_core.resources as r; print(cl_core.__file__); print(r.RESOURCES)")
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(target)) for line in where.stdout.split()), where.stdout  # not the checkout
    demo = run("-m", "cl_core", "demo")
    assert demo.returncode == 0, demo.stderr
    model = demo.stdout.splitlines()[0]
    assert model.startswith(str(target))
    info = run("-m", "cl_core", "info", model, "--json")
    assert info.returncode == 0 and '"shapes-and-sounds"' in info.stdout, info.stderr
