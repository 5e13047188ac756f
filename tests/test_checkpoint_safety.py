"""Checkpoints are untrusted: nothing in them runs, and bad files get clear errors."""

from __future__ import annotations

import json
import pickle
import re
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import tiny_models
from cl_core.errors import CheckpointError, UnsafeCheckpointError
from cl_core.models.open import open_checkpoint
from cl_core.models.safety import safe_torch_load, validate_safetensors

ROOT = Path(__file__).resolve().parent.parent


class Payload:
    """Pickles to a call of open(sentinel, 'w'): creating the file proves code ran."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


def test_reduce_payload_is_refused_and_never_runs(tmp_path):
    sentinel = tmp_path / "PWNED"
    ckpt = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "extra": Payload(sentinel)}, ckpt)
    with pytest.raises(UnsafeCheckpointError) as exc:
        safe_torch_load(ckpt)
    assert "builtins.open" in str(exc.value) or "io.open" in str(exc.value)
    assert "evil.pt" in str(exc.value)
    assert not sentinel.exists()


def test_legacy_plain_pickle_payload_is_refused(tmp_path):
    sentinel = tmp_path / "PWNED2"
    ckpt = tmp_path / "pytorch_model.bin"
    ckpt.write_bytes(pickle.dumps({"w": Payload(sentinel)}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="open"):
        open_checkpoint(ckpt, allow_pickle=True)
    assert not sentinel.exists()


def test_torchscript_archive_is_read_as_data_not_loaded_as_code(tmp_path):
    """Its tensors are read (code never compiled); a scripted Linear is no CLIP, and is told so by its keys.
    Hostile archives: tests/test_openclip_refs.py."""
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    path = tmp_path / "ViT-B-32.pt"
    scripted.save(str(path))
    with pytest.raises(UnsafeCheckpointError, match="allow-pickle"):
        open_checkpoint(path)
    with pytest.raises(CheckpointError, match="not an OpenAI/open_clip CLIP state dict"):
        open_checkpoint(path, allow_pickle=True)


def test_hf_folder_with_auto_map_is_refused(tmp_path, hf_clip):
    folder = tmp_path / "remote_code"
    folder.mkdir()
    sentinel = tmp_path / "REMOTE_RAN"
    for f in hf_clip[0].iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "modeling_evil.py").write_text(f"open({str(sentinel)!r}, 'w').close()\n")
    with pytest.raises(UnsafeCheckpointError) as exc:
        open_checkpoint(folder)
    assert "auto_map" in str(exc.value) and "modeling_evil.py" in str(exc.value)
    assert not sentinel.exists()


def test_pickle_only_folder_needs_opt_in(tmp_path, hf_clip):
    folder = tiny_models.make_openclip_folder(tmp_path / "oc_bin", hf_clip[1], pickle_weights=True)
    with pytest.raises(UnsafeCheckpointError, match="opt-in"):
        open_checkpoint(folder)
    model = open_checkpoint(folder, allow_pickle=True)
    assert model.embed_dim == hf_clip[1].config.projection_dim


def test_no_code_path_disables_weights_only_or_trusts_remote_code():
    pattern = re.compile(r"weights_only\s*=\s*False|trust_remote_code\s*=\s*True|torch\.jit\.load|pickle\.loads?\(")
    offenders = [str(p.relative_to(ROOT)) for folder in ("cl_core", "app") for p in (ROOT / folder).rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def _raw_safetensors(path: Path, header: dict, data: bytes) -> Path:
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)
    return path


@pytest.mark.parametrize("case, match", [
    ("huge_header", "header length"),
    ("overlap", "overlap"),
    ("dtype", "unknown dtype"),
    ("shape", "needs"),
    ("outside", "outside"),
])
def test_malformed_safetensors(tmp_path, case, match):
    path = tmp_path / f"{case}.safetensors"
    if case == "huge_header":
        path.write_bytes(struct.pack("<Q", 2**63) + b"{}")
    elif case == "overlap":
        _raw_safetensors(path, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12))
    elif case == "dtype":
        _raw_safetensors(path, {"a": {"dtype": "F7", "shape": [2], "data_offsets": [0, 8]}}, bytes(8))
    elif case == "shape":
        _raw_safetensors(path, {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8))
    else:
        _raw_safetensors(path, {"a": {"dtype": "F32", "shape": [1000000], "data_offsets": [0, 4000000]}}, bytes(8))
    with pytest.raises(CheckpointError, match=match):
        validate_safetensors(path)


def test_native_with_missing_key_names_it(tmp_path, native_dir):
    folder = tmp_path / "broken_native"
    folder.mkdir()
    (folder / "clens_config.json").write_bytes((native_dir / "clens_config.json").read_bytes())
    from safetensors.torch import load_file

    sd = load_file(str(native_dir / "model.safetensors"))
    del sd["towers.image.proj.weight"]
    sd["towers.image.stray"] = torch.zeros(1)
    save_file(sd, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError) as exc:
        open_checkpoint(folder)
    assert "towers.image.proj.weight" in str(exc.value) and "towers.image.stray" in str(exc.value)


def test_openclip_wrong_shapes_named(tmp_path, hf_clip):
    folder = tiny_models.make_openclip_folder(tmp_path / "oc_wrong", hf_clip[1])
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    cfg["model_cfg"]["embed_dim"] = 32
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"wrong shapes: .*text_projection"):
        open_checkpoint(folder)


def test_unknown_folder_and_missing_path(tmp_path):
    (tmp_path / "readme.md").write_text("hi")
    with pytest.raises(CheckpointError, match="no checkpoint config"):
        open_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="no such file"):
        open_checkpoint(tmp_path / "missing")


def test_hf_pickle_weights_with_wrong_keys_named(tmp_path, hf_clip):
    """A Hugging Face folder whose only weights are a pickle: opt-in, weights-only, and key errors named."""
    folder = tmp_path / "hf_bin"
    folder.mkdir()
    for f in hf_clip[0].iterdir():
        if f.suffix != ".safetensors":
            (folder / f.name).write_bytes(f.read_bytes())
    sd = dict(hf_clip[1].state_dict())
    torch.save(sd, folder / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match="opt-in"):
        open_checkpoint(folder)
    assert open_checkpoint(folder, allow_pickle=True).embed_dim == 24
    sd.pop("visual_projection.weight")
    torch.save(sd, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="missing keys: visual_projection.weight"):
        open_checkpoint(folder, allow_pickle=True)


def test_a_pickled_module_is_named_and_torchs_unsafe_advice_is_never_repeated(tmp_path):
    """A torch.nn module inside a checkpoint: refused naming it, and the message never suggests
    weights_only=False (torch's own advice), which would run whatever the file carries."""
    path = tmp_path / "module.pt"
    torch.save({"layer": torch.nn.Linear(2, 2)}, path)
    with pytest.raises(UnsafeCheckpointError) as got:
        safe_torch_load(path)
    assert "torch.nn.modules.linear.Linear" in str(got.value)
    assert "weights_only" not in str(got.value) and ".safetensors" in str(got.value)


def test_globals_fetched_back_from_the_pickle_memo_are_named():
    """The second global of a module reuses the memoised module name (BINGET): still named in full."""
    import os

    from cl_core.models.safety import _globals_in

    for protocol in (2, 4, 5):
        assert list(_globals_in(pickle.dumps([os.getcwd, os.listdir], protocol=protocol))) == [
            f"{os.getcwd.__module__}.getcwd", f"{os.listdir.__module__}.listdir"]


def test_naming_globals_never_inflates_a_zip_bomb(tmp_path):
    """A .pkl member that inflates to 512 MB is scanned by streaming a bounded prefix."""
    import tracemalloc
    import zipfile

    from cl_core.models import safety

    bomb = tmp_path / "bomb.pt"
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("archive/data.pkl", "w") as member:
        member.write(pickle.dumps({"a": 1})[:-1])  # an unterminated pickle, then zeros
        for _ in range(512):
            member.write(chunk)
    assert bomb.stat().st_size < 4 << 20
    tracemalloc.start()
    safety.pickle_globals(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < safety.MAX_PICKLE_SCAN * 2.5 < 512 << 20
