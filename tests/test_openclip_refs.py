"""open_clip layouts beyond the plain ViT (ModifiedResNet, timm ViT towers with linear or attention-pool heads,
timm ConvNeXt towers with MLP / classifier projections, timm EVA towers, MobileCLIP's FastViT-MCi,
Hugging Face BERT text towers, SigLIP's text tower and tokenizer, CoCa) against open_clip's own embeddings.

The checkpoints and references in tests/fixtures/openclip_refs were made by open_clip and timm themselves
(scripts/reference_fixtures/make_openclip_refs.py, versions in versions.json); the configs and tokenizers their
configs name by hub id are laid out here as a Hugging Face cache, as a user's would be after a first download.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cl_core.errors import CheckpointError
from cl_core.modality import Item, Modality
from cl_core.models.open import open_checkpoint

REFS = Path(__file__).parent / "fixtures" / "openclip_refs"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MODELS = ("rn", "biomedclip", "siglip", "coca", "convnext", "convnext_fc", "eva02", "eva01", "mobileclip")


@pytest.fixture
def hub_home(tmp_path, monkeypatch):
    """The named configs/tokenizers in a Hugging Face cache, offline (as huggingface_hub keeps one)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    for folder in (REFS / "_hub").iterdir():
        base = cache / f"models--{folder.name}"
        shutil.copytree(folder, base / "snapshots" / COMMIT)
        (base / "refs").mkdir(parents=True)
        (base / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def _encode(model, modality, data):
    return model.encode(modality, [Item(f"x{i}", modality, d) for i, d in enumerate(data)])


@pytest.mark.parametrize("name", MODELS)
def test_open_clip_layouts_embed_as_open_clip_does(name, hub_home):
    ref = np.load(REFS / name / "reference.npz")
    texts = json.loads((REFS / "texts.json").read_text())
    images = [Image.open(p).convert("RGB") for p in sorted((REFS / "images").glob("*.png"))]
    model = open_checkpoint(REFS / name, device="cpu")
    assert model.format == "open_clip"
    tokens = model.prepare(Modality.TEXT, [Item("t", Modality.TEXT, t) for t in texts]).inputs["tokens"]
    assert torch.equal(tokens, torch.from_numpy(ref["tokens"]).to(tokens.dtype))
    img = _encode(model, Modality.IMAGE, images)
    txt = _encode(model, Modality.TEXT, texts)
    # the issue asks for 1e-4; these towers are exact (0.0 here), and 1e-5 still tells GELU from tanh-GELU
    assert np.abs(img - ref["image"]).max() < 1e-5
    assert np.abs(txt - ref["text"]).max() < 1e-5
    # what tells the inputs apart (random towers can map different inputs to nearby points) agrees too
    assert np.abs((img - img.mean(0)) - (ref["image"] - ref["image"].mean(0))).max() < 1e-5


def test_siglip_layout_keeps_its_logit_bias(hub_home):
    model = open_checkpoint(REFS / "siglip", device="cpu")
    assert model.logit_bias is not None


def test_a_named_text_tower_not_in_the_cache_fails_in_one_line_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError) as err:
        open_checkpoint(REFS / "biomedclip", device="cpu")
    assert "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_named_text_tower_may_be_a_folder_beside_the_checkpoint(tmp_path):
    """Offline users can put the named config folder next to the weights instead of a hub cache."""
    folder = tmp_path / "biomedclip"
    shutil.copytree(REFS / "biomedclip", folder)
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    shutil.copytree(REFS / "_hub" / "microsoft--BiomedNLP-BiomedBERT-base-uncased-abstract", folder / "pubmedbert")
    cfg["model_cfg"]["text_cfg"]["hf_model_name"] = "pubmedbert"
    cfg["model_cfg"]["text_cfg"]["hf_tokenizer_name"] = "pubmedbert"
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    texts = json.loads((REFS / "texts.json").read_text())
    txt = _encode(open_checkpoint(folder, device="cpu"), Modality.TEXT, texts)
    assert np.abs(txt - np.load(REFS / "biomedclip" / "reference.npz")["text"]).max() < 1e-4


@pytest.mark.parametrize("name,source", [("eva02_base_patch14_224", "biomedclip"), ("convnextv2_base", "convnext"),
                                         ("convnext_base_ols", "convnext")])
def test_unsupported_timm_families_are_refused_by_name(tmp_path, hub_home, name, source):
    folder = tmp_path / "tower"
    shutil.copytree(REFS / source, folder)
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    cfg["model_cfg"]["vision_cfg"]["timm_model_name"] = name
    cfg["model_cfg"]["vision_cfg"].pop("timm_model_kwargs", None)
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=name):
        open_checkpoint(folder, device="cpu")


def test_wrong_heads_for_a_timm_name_fail_naming_the_mismatch(tmp_path, hub_home):
    folder = tmp_path / "heads"
    shutil.copytree(REFS / "siglip", folder)
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    cfg["model_cfg"]["vision_cfg"]["timm_model_kwargs"]["num_heads"] = 3
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="3 heads"):
        open_checkpoint(folder, device="cpu")


def test_a_lone_resnet_state_dict_is_never_guessed(tmp_path):
    from cl_core.errors import ArchitectureNeeded

    lone = tmp_path / "epoch_3.safetensors"
    shutil.copy(REFS / "rn" / "open_clip_model.safetensors", lone)
    with pytest.raises(ArchitectureNeeded):
        open_checkpoint(lone, device="cpu")
    with pytest.raises(CheckpointError, match="wrong shapes"):  # a real RN50 is far bigger than this one
        open_checkpoint(lone, device="cpu", arch="RN50")
    (tmp_path / "epoch_3.json").write_text((REFS / "rn" / "open_clip_config.json").read_text())
    texts = json.loads((REFS / "texts.json").read_text())
    txt = _encode(open_checkpoint(lone, device="cpu"), Modality.TEXT, texts)
    assert np.abs(txt - np.load(REFS / "rn" / "reference.npz")["text"]).max() < 1e-5


def _torchscript_archive(sd: dict[str, torch.Tensor], path: Path) -> None:
    """An archive laid out as OpenAI's CLIP releases are: a scripted module tree whose attributes are the weights."""

    class Node(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Node()
    for key, value in sd.items():
        *parts, leaf = key.split(".")
        node = root
        for part in parts:
            if not hasattr(node, part):
                node.add_module(part, Node())
            node = getattr(node, part)
        if value.is_floating_point():
            node.register_parameter(leaf, torch.nn.Parameter(value.clone(), requires_grad=False))
        else:
            node.register_buffer(leaf, value.clone())
    torch.jit.script(root).save(str(path))


def test_openai_torchscript_releases_open_by_their_sha256_without_running_code(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from cl_core.models import archs
    from cl_core.models.torchscript_weights import torchscript_state_dict

    sd = load_file(str(REFS / "rn" / "open_clip_model.safetensors"))
    archive = tmp_path / "RN50.pt"
    _torchscript_archive(sd, archive)
    read = torchscript_state_dict(archive)
    assert read.keys() == sd.keys() and all(torch.equal(read[k], sd[k]) for k in sd)

    from cl_core.errors import ArchitectureNeeded

    with pytest.raises(ArchitectureNeeded):  # an unknown digest is still never guessed
        open_checkpoint(archive, device="cpu", allow_pickle=True)
    from cl_core.hashing import file_sha256

    model_cfg = json.loads((REFS / "rn" / "open_clip_config.json").read_text())["model_cfg"]
    monkeypatch.setitem(archs.ARCHS, "tiny-RN-quickgelu", model_cfg)
    monkeypatch.setitem(archs.OPENAI_RELEASES, file_sha256(archive), "tiny-RN-quickgelu")
    texts = json.loads((REFS / "texts.json").read_text())
    txt = _encode(open_checkpoint(archive, device="cpu", allow_pickle=True), Modality.TEXT, texts)
    assert np.abs(txt - np.load(REFS / "rn" / "reference.npz")["text"]).max() < 1e-5
    assert json.loads((tmp_path / "RN50.json").read_text())["architecture"] == "tiny-RN-quickgelu"


def test_a_torchscript_archive_asking_for_code_is_refused(tmp_path):
    import pickle
    import zipfile

    from cl_core.errors import UnsafeCheckpointError

    sentinel = tmp_path / "PWNED"
    # a module object whose attribute is os.system("touch ...") (GLOBAL, REDUCE), as a hostile archive would hold
    evil = (b"\x80\x02c__torch__\nCLIP\n)\x81}(X\x01\x00\x00\x00wcos\nsystem\nX" + len(f"touch {sentinel}").to_bytes(4, "little")
            + f"touch {sentinel}".encode() + b"\x85Rub.")
    path = tmp_path / "ViT-B-32.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", evil)
        zf.writestr("archive/constants.pkl", pickle.dumps(()))
        zf.writestr("archive/code/__torch__.py", "def forward(self): pass\n")
    with pytest.raises(UnsafeCheckpointError, match="os.system|system"):
        open_checkpoint(path, device="cpu", allow_pickle=True)
    assert not sentinel.exists()


def test_a_reparameterised_mobileclip_is_refused_naming_it(tmp_path, hub_home):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "mobileclip"
    shutil.copytree(REFS / "mobileclip", folder)
    weights = load_file(folder / "open_clip_model.safetensors")
    key = "visual.trunk.stages.0.blocks.0.token_mixer."
    weights[key + "reparam_conv.weight"] = weights[key + "mixer.conv_kxk.0.conv.weight"].clone()
    save_file(weights, folder / "open_clip_model.safetensors")
    with pytest.raises(CheckpointError, match="re-parameterised"):
        open_checkpoint(folder, device="cpu")
