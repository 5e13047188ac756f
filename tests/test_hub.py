"""Hub ids (`org/name`, `hf-hub:org/name`): resolved from the user's Hugging Face cache, offline here; a model
that is not cached fails in one line naming it; local paths are never mistaken for ids."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from cl_core.models.hub import hub_id

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(home: Path, repo: str, folder: Path) -> Path:
    """The layout huggingface_hub keeps: models--org--name/{refs/main, snapshots/COMMIT/...}."""
    base = home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = base / "snapshots" / COMMIT
    shutil.copytree(folder, snapshot)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(COMMIT)
    return snapshot


def clens(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "CLENS_DEVICE": "cpu"}
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run([sys.executable, "-m", "cl_core", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_ids_and_paths_are_told_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert hub_id("openai/clip-vit-base-patch32") == ("openai/clip-vit-base-patch32", None)
    assert hub_id("hf-hub:timm/ViT-B-16-SigLIP@v1.0") == ("timm/ViT-B-16-SigLIP", "v1.0")
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "name").mkdir()
    assert hub_id("org/name") is None  # a folder that exists is a folder
    for path in ("./a/b", "/abs/path", "~/x/y", "a/b/c", "../a", "a/..", "model.safetensors"):
        assert hub_id(path) is None, path


def test_a_cached_hub_model_opens_offline_by_its_id(hf_clip, tmp_path):
    folder, _ = hf_clip
    hub_cache(tmp_path / "hf", "tiny-org/tiny-clip", folder)
    for spec in ("tiny-org/tiny-clip", "hf-hub:tiny-org/tiny-clip"):
        out = clens("info", spec, "--json", home=tmp_path / "hf")
        assert out.returncode == 0, out.stderr
        assert '"format": "huggingface"' in out.stdout and COMMIT in out.stdout


def test_a_model_not_in_the_cache_fails_in_one_line_offline(tmp_path):
    out = clens("info", "nobody/no-such-model", home=tmp_path / "hf")
    assert out.returncode == 3 and "Traceback" not in out.stderr
    assert "nobody/no-such-model" in out.stderr and "HF_HUB_OFFLINE" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
