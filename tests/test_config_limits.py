"""Checkpoint configs with absurd sizes or hostile nesting are refused before anything is allocated."""

from __future__ import annotations

import json
import shutil

import pytest

from cl_core import actions
from cl_core.errors import CheckpointError
from cl_core.models.config_limits import check_config, read_config


@pytest.mark.parametrize("edit,key", [
    (lambda c: c["towers"]["image"]["preprocess"].update(size=200_000), "preprocess.size"),
    (lambda c: c["towers"]["text"].update(context_length=10**9), "context_length"),
    (lambda c: c.update(embed_dim=10**7), "embed_dim"),
])
def test_native_config_with_an_absurd_size_is_refused_naming_the_key(native_dir, tmp_path, edit, key):
    folder = tmp_path / "m"
    shutil.copytree(native_dir, folder)
    config = json.loads((folder / "clens_config.json").read_text())
    edit(config)
    (folder / "clens_config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        actions.open_model(folder)


def test_deep_nesting_and_huge_configs_are_refused(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="not a JSON object|nested"):
        read_config(deep)
    nested: dict = {}
    node = nested
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(CheckpointError, match="nested more than"):
        check_config(nested, "cfg")


def test_the_real_fixture_configs_pass(native_dir, hf_clip, openclip_dir):
    for path in (native_dir / "clens_config.json", hf_clip[0] / "config.json",
                 openclip_dir / "open_clip_config.json"):
        read_config(path)  # no refusal for what real libraries write
    vocab = {"text_config": {"vocab_size": 49_408, "hidden_size": 8_192, "max_position_embeddings": 77}}
    check_config(vocab, "cfg")


def test_a_hostile_image_processor_size_is_refused(hf_clip, tmp_path):
    folder = tmp_path / "hf"
    shutil.copytree(hf_clip[0], folder)
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    pre["size"] = {"shortest_edge": 200_000}
    (folder / "preprocessor_config.json").write_text(json.dumps(pre))
    with pytest.raises(CheckpointError, match="shortest_edge"):
        actions.open_model(folder)
