"""The frozen sentence-encoder text tower: sentence-transformers' vectors, only the projection saved."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.torch import load_file

import tiny_models
from cl_core.modality import Item, Modality
from cl_core.models.open import open_checkpoint


@pytest.fixture(scope="module")
def sentence_model(tmp_path_factory):
    cfg = tiny_models.native_config()
    cfg["towers"]["text"] = {"arch": "sentence", "hidden": [32]}
    folder = tiny_models.make_native(tmp_path_factory.mktemp("sent") / "m", config=cfg)
    return folder, open_checkpoint(folder)


def test_encoder_weights_stay_out_of_the_checkpoint(sentence_model):
    folder, model = sentence_model
    keys = load_file(str(folder / "model.safetensors")).keys()
    assert not any(".encoder." in k for k in keys)
    assert any(k.startswith("towers.text.proj.") for k in keys)
    assert model.info()["preprocessing"]["text"]["encoder"] == "all-MiniLM-L6-v2"


def test_sentence_vector_equals_sentence_transformers(sentence_model):
    from sentence_transformers import SentenceTransformer

    from cl_core.models.sentence_tower import encoder_path

    _, model = sentence_model
    texts = ["a crimson disc", "a small striped blue square at the top"]
    tower = model.net.towers["text"]
    ours = tower.sentence_embedding(**tower.tokenize(texts)).numpy()
    reference = SentenceTransformer(str(encoder_path("all-MiniLM-L6-v2")), device="cpu").encode(
        texts, normalize_embeddings=True, show_progress_bar=False)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    vecs = model.encode(Modality.TEXT, [Item(t, Modality.TEXT, t) for t in texts])
    assert vecs.shape == (2, 16)


def test_token_states_and_tokens_equal_transformers_bert(sentence_model):
    """The plain-torch BERT and tokenizer.json give what transformers' BertModel and fast tokenizer give,
    padding and truncation included (the start-up no longer imports transformers for the demo)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from cl_core.models.sentence_tower import encoder_path

    _, model = sentence_model
    tower = model.net.towers["text"]
    path = str(encoder_path("all-MiniLM-L6-v2"))
    texts = ["a crimson disc", "Stage II lung adenocarcinoma; " * 20, "ÉCOLE naïve café, 3.5 µm"]
    ours = tower.tokenize(texts)
    ref_tok = AutoTokenizer.from_pretrained(path, local_files_only=True)(
        texts, padding=True, truncation=True, max_length=tower.max_length, return_tensors="pt")
    assert torch.equal(ours["input_ids"], ref_tok["input_ids"])
    assert torch.equal(ours["attention_mask"], ref_tok["attention_mask"])
    reference = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True).eval()
    with torch.no_grad():
        expected = reference(**ref_tok).last_hidden_state
    mask = ref_tok["attention_mask"].bool()
    torch.testing.assert_close(tower.token_states(**ours)[mask], expected[mask], atol=2e-5, rtol=1e-4)


def test_attention_pooling_is_padding_invariant_and_saved(tmp_path):
    """Training caches fixed-length token states, inference pads per batch: both give the same vector."""
    import torch

    cfg = tiny_models.native_config()
    cfg["towers"]["text"] = {"arch": "sentence", "pool": "attention", "queries": 2, "max_length": 48}
    folder = tiny_models.make_native(tmp_path / "att", config=cfg)
    model = open_checkpoint(folder)
    tower = model.net.towers["text"]
    texts = ["Stage II lung adenocarcinoma; tumour cellularity about 40%", "short"]
    dynamic = tower.tokenize(texts)
    cached = tower.cached_states(texts)
    assert cached["states"].shape[1] == cached["mask"].shape[1] == 48 > dynamic["input_ids"].shape[1]
    with torch.no_grad():
        a = tower.project_states(tower.token_states(**dynamic), dynamic["attention_mask"])
        b = tower.project_states(cached["states"], cached["mask"])
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert "towers.text.queries" in load_file(str(folder / "model.safetensors"))


def test_a_sentence_transformers_folder_opens_as_a_text_model_equal_to_its_library():
    """A sentence-transformers text model (modules.json: Transformer, Pooling, Normalize) opens on its own,
    text only, and embeds as sentence-transformers does."""
    from sentence_transformers import SentenceTransformer

    from cl_core.models.sentence_tower import encoder_path

    folder = encoder_path("all-MiniLM-L6-v2")
    model = open_checkpoint(folder)
    assert model.format == "sentence_transformers" and model.modalities == (Modality.TEXT,)
    texts = ["a crimson disc", "Stage II lung adenocarcinoma; " * 40, "naïve café"]
    ours = model.encode(Modality.TEXT, [Item(t, Modality.TEXT, t) for t in texts])
    reference = SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True,
                                                                      show_progress_bar=False)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    with pytest.raises(Exception, match="no image tower"):
        model.encode(Modality.IMAGE, [])
