"""Every format embeds like its reference library (within 1e-4), with matching preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import media
from cl_core.errors import (
    ArchitectureNeeded,
    CheckpointError,
    ClensError,
    DimensionMismatchError,
    ModalityError,
)
from cl_core.modality import AudioClip, ChannelStack, Item, Modality
from cl_core.models.clip_tokenizer import get_clip_tokenizer
from cl_core.models.device import pick_device, run_batched
from cl_core.models.open import open_checkpoint
from cl_core.models.preprocess import ImagePreprocess, windows

TEXTS = ["a photo of a red circle", "A Dog!", "two  blue squares & a cat", "naïve café — 12 km/h", "don't stop"]


def _images(seed=0, sizes=((32, 32), (48, 64), (64, 40), (33, 50))):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in sizes]


def _norm(t: torch.Tensor) -> np.ndarray:
    return F.normalize(t.float(), dim=-1).detach().numpy()


def _feat(out) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _items(mod, data):
    return [Item(f"x{i}", mod, d) for i, d in enumerate(data)]


def test_hf_clip_matches_transformers_forward(hf_clip):
    from transformers import AutoTokenizer, CLIPImageProcessor

    folder, ref = hf_clip
    model = open_checkpoint(folder)
    assert set(model.modalities) == {Modality.IMAGE, Modality.TEXT}
    tok = AutoTokenizer.from_pretrained(str(folder))
    proc = CLIPImageProcessor.from_pretrained(str(folder))
    imgs = [im for im in _images() if min(im.size) != 33]
    with torch.no_grad():
        ref_t = _norm(_feat(ref.get_text_features(**tok(TEXTS, padding=True, return_tensors="pt"))))
        ref_i = _norm(_feat(ref.get_image_features(**proc(images=imgs, return_tensors="pt"))))
    ours_t = model.encode(Modality.TEXT, _items(Modality.TEXT, TEXTS))
    ours_i = model.encode(Modality.IMAGE, _items(Modality.IMAGE, imgs))
    assert ours_t.dtype == np.float32 and ours_t.shape == ref_t.shape
    np.testing.assert_allclose(ours_t, ref_t, atol=1e-4)
    np.testing.assert_allclose(ours_i, ref_i, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(ours_i, axis=1), 1.0, atol=1e-5)


def test_clip_tokenizer_equals_hf_clip_tokenizer(hf_clip):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_clip[0]))
    ours = get_clip_tokenizer()
    for text in TEXTS + ["<b>html</b> tags", "numbers 123 and CAPS", "emoji 🙂 ok"]:
        assert ours.encode(text) == tok(text)["input_ids"][1:-1], text
    # open_clip (whose checkpoints use this tokenizer) html-unescapes first; HF's fast tokenizer does not
    assert ours.encode("fish &amp; chips") == ours.encode("fish & chips")


def test_openclip_layout_matches_transformers_forward(openclip_dir, hf_clip):
    from transformers import AutoTokenizer

    folder, ref = hf_clip
    model = open_checkpoint(openclip_dir)
    assert model.format == "open_clip"
    tok = AutoTokenizer.from_pretrained(str(folder))
    imgs = _images()
    pre = ImagePreprocess(size=32)
    pixels = torch.stack([pre(im) for im in imgs])
    with torch.no_grad():
        ref_t = _norm(_feat(ref.get_text_features(**tok(TEXTS, padding=True, return_tensors="pt"))))
        ref_i = _norm(_feat(ref.get_image_features(pixel_values=pixels)))
    np.testing.assert_allclose(model.encode(Modality.TEXT, _items(Modality.TEXT, TEXTS)), ref_t, atol=1e-4)
    np.testing.assert_allclose(model.encode(Modality.IMAGE, _items(Modality.IMAGE, imgs)), ref_i, atol=1e-4)
    assert model.logit_scale == pytest.approx(float(ref.logit_scale.detach().exp()), rel=1e-5)


def test_openclip_gelu_variant(tmp_path):
    """open_clip models trained without QuickGELU (quick_gelu false) use exact GELU."""
    import tiny_models

    ref = tiny_models.make_hf_clip(tmp_path / "hf_gelu", hidden_act="gelu", seed=3)
    folder = tiny_models.make_openclip_folder(tmp_path / "oc_gelu", ref, quick_gelu=False)
    model = open_checkpoint(folder)
    ids = get_clip_tokenizer()(["a red circle"])
    with torch.no_grad():
        expected = _norm(_feat(ref.get_text_features(input_ids=ids[:, :6])))
    np.testing.assert_allclose(model.encode(Modality.TEXT, _items(Modality.TEXT, ["a red circle"])), expected,
                               atol=1e-4)


def test_openai_single_file_state_dict(tmp_path, hf_clip, openclip_dir):
    """A bare state dict in OpenAI layout (.pt weights-only, or .safetensors): architecture from shapes."""
    from safetensors.torch import load_file, save_file

    sd = load_file(str(openclip_dir / "open_clip_model.safetensors"))
    pt = tmp_path / "finetuned.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, pt)  # DDP-wrapped, as trainers save
    st = tmp_path / "finetuned.safetensors"
    save_file(sd, str(st))
    reference = open_checkpoint(openclip_dir).encode(Modality.TEXT, _items(Modality.TEXT, TEXTS))
    for path in (pt, st):  # the keys do not say GELU or QuickGELU, nor the heads: never guessed
        with pytest.raises(ArchitectureNeeded, match="--arch ViT-B-32"):
            open_checkpoint(path, allow_pickle=True)
    with pytest.raises(CheckpointError, match="size mismatch|do not fit|shape"):  # a real name, wrong shapes
        open_checkpoint(st, arch="ViT-B-32")
    assert not (tmp_path / "finetuned.json").exists()  # a failed guess is not remembered
    side = tmp_path / "finetuned.json"
    side.write_text((openclip_dir / "open_clip_config.json").read_text())
    for path in (pt, st):
        model = open_checkpoint(path, allow_pickle=True)
        assert model.format == "openai_clip"
        np.testing.assert_allclose(model.encode(Modality.TEXT, _items(Modality.TEXT, TEXTS)), reference, atol=1e-5)


def test_image_preprocess_matches_hf_where_rounding_agrees(hf_clip):
    from transformers import CLIPImageProcessor

    proc = CLIPImageProcessor.from_pretrained(str(hf_clip[0]))
    ours = ImagePreprocess(size=32)
    for im in _images(sizes=((32, 32), (48, 64), (64, 48), (80, 60))):
        theirs = proc(images=[im], return_tensors="pt")["pixel_values"][0]
        assert torch.allclose(ours(im), theirs, atol=1e-5)


def test_image_preprocess_follows_torchvision_rounding():
    """torchvision (open_clip) crops at int(round((h - s) / 2)); HF at (h - s) // 2. We follow open_clip."""
    pre = ImagePreprocess(size=4)
    img = Image.fromarray(np.arange(4 * 7, dtype=np.uint8).reshape(7, 4).repeat(3).reshape(7, 4, 3))
    out = pre.resize_crop(img)  # width already 4: no resize; crop 7 -> 4, offset round(1.5) = 2
    np.testing.assert_array_equal(np.asarray(out)[..., 0], np.asarray(img)[2:6, :, 0])
    wide = Image.new("RGB", (300, 200))
    assert pre.resize_crop(wide).size == (4, 4)
    assert ImagePreprocess(size=224).resize_crop(Image.new("RGB", (500, 333))).size == (224, 224)


def test_siglip_matches_transformers_forward(hf_siglip):
    from transformers import AutoTokenizer, SiglipImageProcessor

    folder, ref = hf_siglip
    model = open_checkpoint(folder)
    texts = ["a photo of the red circle", "a blue square", "the cat"]
    tok = AutoTokenizer.from_pretrained(str(folder))
    proc = SiglipImageProcessor.from_pretrained(str(folder))
    imgs = _images()
    with torch.no_grad():
        enc = tok(texts, padding="max_length", max_length=16, truncation=True, return_tensors="pt")
        ref_t = _norm(_feat(ref.get_text_features(input_ids=enc["input_ids"])))
        ref_i = _norm(_feat(ref.get_image_features(**proc(images=imgs, return_tensors="pt"))))
    np.testing.assert_allclose(model.encode(Modality.TEXT, _items(Modality.TEXT, texts)), ref_t, atol=1e-4)
    np.testing.assert_allclose(model.encode(Modality.IMAGE, _items(Modality.IMAGE, imgs)), ref_i, atol=1e-4)
    assert model.logit_bias is not None


def test_clap_matches_transformers_forward_and_is_batch_independent(hf_clap):
    from transformers import AutoTokenizer, ClapFeatureExtractor

    folder, ref = hf_clap
    model = open_checkpoint(folder)
    fe = ClapFeatureExtractor.from_pretrained(str(folder))
    clips = [media.tone(0.7, 16000, 440), media.tone(0.5, 16000, 880)]
    with torch.no_grad():
        ref_a = _norm(_feat(ref.get_audio_features(**fe(clips, sampling_rate=16000, return_tensors="pt"))))
        tok = AutoTokenizer.from_pretrained(str(folder))
        ref_t = _norm(_feat(ref.get_text_features(**tok(["a loud bird", "quiet music"], padding=True,
                                                        return_tensors="pt"))))
    items = _items(Modality.AUDIO, [AudioClip(c, 16000) for c in clips])
    np.testing.assert_allclose(model.encode(Modality.AUDIO, items), ref_a, atol=1e-4)
    np.testing.assert_allclose(model.encode(Modality.TEXT, _items(Modality.TEXT, ["a loud bird", "quiet music"])),
                               ref_t, atol=1e-4)
    # long audio: fixed windows, so its embedding does not depend on the run or on its batch mates
    long_clip = Item("long", Modality.AUDIO, AudioClip(media.tone(2.6, 32000, 300), 32000))
    alone = model.encode(Modality.AUDIO, [long_clip])
    mixed = model.encode(Modality.AUDIO, [items[0], long_clip, items[1]], batch_size=3)
    again = model.encode(Modality.AUDIO, [long_clip])
    np.testing.assert_allclose(alone[0], mixed[1], atol=1e-5)
    np.testing.assert_array_equal(alone, again)


def test_windows_are_fixed():
    wave = np.arange(10_500, dtype=np.float32)
    parts = windows(wave, 4000)
    assert [len(p) for p in parts] == [4000, 4000, 2500]
    assert windows(np.arange(8_100, dtype=np.float32), 4000)[-1][-1] == 7999  # 100-sample sliver dropped


def test_native_all_modalities(native_model, media_dir):
    from cl_core.readers import read_path

    m = native_model
    assert set(m.modalities) == {Modality.IMAGE, Modality.TEXT, Modality.AUDIO, Modality.MULTICHANNEL}
    outs = {
        Modality.IMAGE: m.encode(Modality.IMAGE, read_path(media_dir / "red.png")),
        Modality.TEXT: m.encode(Modality.TEXT, _items(Modality.TEXT, ["a red circle"])),
        Modality.AUDIO: m.encode(Modality.AUDIO, read_path(media_dir / "tone.wav")),
        Modality.MULTICHANNEL: m.encode(Modality.MULTICHANNEL, read_path(media_dir / "mif.ome.tif")),
    }
    for mod, v in outs.items():
        assert v.shape == (1, 16), mod
        assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5


def test_native_channel_selection_by_name(native_model):
    rng = np.random.default_rng(0)
    px = rng.random((4, 32, 32), dtype=np.float32)
    named = Item("a", Modality.MULTICHANNEL, ChannelStack(px, ("CD8", "junk", "DAPI", "panCK")))
    ordered = Item("b", Modality.MULTICHANNEL, ChannelStack(px[[2, 3, 0]], ("DAPI", "panCK", "CD8")))
    a, b = native_model.encode(Modality.MULTICHANNEL, [named, ordered])
    np.testing.assert_allclose(a, b, atol=1e-6)
    missing = Item("c", Modality.MULTICHANNEL, ChannelStack(px[:2], ("DAPI", "CD68")))
    with pytest.raises(ClensError, match="panCK"):
        native_model.encode(Modality.MULTICHANNEL, [missing])


def test_missing_modality_is_a_clear_error(hf_siglip):
    model = open_checkpoint(hf_siglip[0])
    with pytest.raises(ModalityError, match="no audio tower"):
        model.encode(Modality.AUDIO, [Item("x", Modality.AUDIO, AudioClip(np.zeros(100, np.float32), 16000))])


def test_tower_dimension_mismatch_names_both(tmp_path):
    from transformers import SiglipConfig, SiglipModel

    import tiny_models

    folder = tmp_path / "siglip_mismatch"
    folder.mkdir()
    tiny_models._word_tokenizer(folder, 16)
    cfg = SiglipConfig(text_config=dict(vocab_size=30, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=16),
                       vision_config=dict(hidden_size=48, intermediate_size=64, num_hidden_layers=1,
                                          num_attention_heads=2, image_size=32, patch_size=8))
    SiglipModel(cfg).save_pretrained(str(folder))
    from transformers import SiglipImageProcessor

    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(folder))
    model = open_checkpoint(folder)
    with pytest.raises(DimensionMismatchError) as exc:
        model.encode(Modality.IMAGE, _items(Modality.IMAGE, _images()[:1]))
    assert exc.value.dims == (48, 32)


def test_oom_halves_batch_and_matches_reference(native_model):
    """A forward that runs out of memory above 2 rows: the job halves its batch and finishes identically."""
    texts = [f"caption number {i}" for i in range(7)]
    reference = native_model.encode(Modality.TEXT, _items(Modality.TEXT, texts), batch_size=1)
    original = native_model.forward
    sizes: list[int] = []

    def flaky(modality, inputs):
        rows = next(iter(inputs.values())).shape[0]
        sizes.append(rows)
        if rows > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(modality, inputs)

    native_model.forward = flaky
    try:
        out = native_model.encode(Modality.TEXT, _items(Modality.TEXT, texts), batch_size=8)
    finally:
        del native_model.forward
    np.testing.assert_allclose(out, reference, atol=1e-5)
    assert sizes[:3] == [7, 4, 2] and max(sizes[3:]) <= 2


def test_run_batched_reraises_other_errors():
    def boom(chunk):
        raise ValueError("not memory")

    with pytest.raises(ValueError):
        run_batched([1, 2, 3], 2, boom, torch.device("cpu"))


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ClensError, match="no CUDA"):
            pick_device("cuda")
    with pytest.raises(ClensError, match="unknown device"):
        pick_device("tpu")


def test_channel_scales_percentile_asinh_and_none():
    from cl_core.models.preprocess import StackPreprocess

    px = np.stack([np.linspace(0, 3000, 64 * 64, dtype=np.float32).reshape(64, 64)] * 2)
    item = Item("s.npy", Modality.MULTICHANNEL, ChannelStack(px, ("a", "b")))
    pct = StackPreprocess.from_dict({"channels": ["a", "b"], "scale": "percentile"})(item)
    assert float(pct.min()) == 0.0 and float(pct.max()) == 1.0  # each image stretched to [0, 1]
    asinh = StackPreprocess.from_dict({"channels": ["a", "b"], "scale": "asinh", "cofactor": 150})(item)
    np.testing.assert_allclose(asinh.numpy(), np.arcsinh(px / 150), rtol=1e-5)  # absolute intensities kept
    dim = Item("d.npy", Modality.MULTICHANNEL, ChannelStack(px / 10, ("a", "b")))
    assert float(StackPreprocess.from_dict({"channels": ["a", "b"], "scale": "asinh"})(dim).max()) < float(asinh.max())
    assert torch.equal(StackPreprocess.from_dict({"channels": ["a", "b"], "scale": "none"})(item), torch.from_numpy(px))


def test_unknown_channel_scale_is_a_checkpoint_error(tmp_path):
    import tiny_models

    cfg = tiny_models.native_config()
    cfg["towers"]["multichannel"]["preprocess"]["scale"] = "log-ish"
    with pytest.raises(ClensError, match="multichannel tower preprocessing: unknown channel scale 'log-ish'"):
        open_checkpoint(tiny_models.make_native(tmp_path / "m", config=cfg))


def test_a_named_architecture_is_remembered_beside_the_state_dict(tmp_path, openclip_dir, monkeypatch):
    """--arch NAME opens a lone state dict and is written beside it, so the next open asks nothing."""
    import json

    from safetensors.torch import load_file, save_file

    from cl_core.models import archs

    fixture_cfg = json.loads((openclip_dir / "open_clip_config.json").read_text())["model_cfg"]
    monkeypatch.setitem(archs.ARCHS, "ViT-B-32-quickgelu", fixture_cfg)  # the tiny fixture's shapes, by that name
    st = tmp_path / "epoch_3.safetensors"
    save_file(load_file(str(openclip_dir / "open_clip_model.safetensors")), str(st))
    reference = open_checkpoint(openclip_dir).encode(Modality.TEXT, _items(Modality.TEXT, TEXTS))
    model = open_checkpoint(st, arch="ViT-B-32-quickgelu")
    np.testing.assert_allclose(model.encode(Modality.TEXT, _items(Modality.TEXT, TEXTS)), reference, atol=1e-5)
    remembered = json.loads((tmp_path / "epoch_3.json").read_text())
    assert remembered["architecture"] == "ViT-B-32-quickgelu"
    again = open_checkpoint(st)  # no question the second time
    np.testing.assert_allclose(again.encode(Modality.TEXT, _items(Modality.TEXT, TEXTS)), reference, atol=1e-5)


def test_a_missing_tokenizer_library_is_one_line_naming_what_to_install(hf_siglip, monkeypatch):
    """SigLIP's tokenizer without sentencepiece: one CheckpointError saying what to install, no traceback."""
    import transformers

    def missing(*args, **kwargs):  # noqa: ANN002, ANN003
        raise ImportError("SiglipTokenizer requires the SentencePiece library but it was not found in your "
                          "environment.\nCheckout the instructions on the installation page")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", missing)
    with pytest.raises(CheckpointError) as got:
        open_checkpoint(hf_siglip[0] if isinstance(hf_siglip, tuple) else hf_siglip)
    message = str(got.value)
    assert "SentencePiece" in message and "pip install sentencepiece protobuf" in message and "\n" not in message


def test_siglip2_matches_transformers_forward(tmp_path):
    """SigLIP2's NaFlex images (patch sequence, mask, grid shapes) and max_length-padded text, as transformers
    runs them with its PIL image processor."""
    from transformers import AutoImageProcessor, AutoTokenizer

    import tiny_models

    folder = tmp_path / "siglip2"
    ref = tiny_models.make_hf_siglip2(folder)
    model = open_checkpoint(folder)
    assert {Modality.IMAGE, Modality.TEXT} <= set(model.modalities)
    texts = ["a photo of a red circle", "the blue square", "a dog"]
    tok = AutoTokenizer.from_pretrained(str(folder))
    proc = AutoImageProcessor.from_pretrained(str(folder))
    imgs = _images(sizes=((32, 32), (48, 64), (64, 24)))
    with torch.no_grad():
        enc = tok(texts, padding="max_length", truncation=True, max_length=64, return_tensors="pt")
        ref_t = _norm(_feat(ref.get_text_features(input_ids=enc["input_ids"])))
        pix = proc(images=imgs, return_tensors="pt")
        ref_i = _norm(_feat(ref.get_image_features(**{k: v for k, v in pix.items()})))
    np.testing.assert_allclose(model.encode(Modality.TEXT, _items(Modality.TEXT, texts)), ref_t, atol=1e-4)
    np.testing.assert_allclose(model.encode(Modality.IMAGE, _items(Modality.IMAGE, imgs)), ref_i, atol=1e-4)
    assert model.preprocessing()["text"]["padding"] == "max_length"


def test_blip_retrieval_gives_its_contrastive_embeddings(tmp_path):
    """BLIP image-text retrieval: image and text vectors whose cosines are transformers' ITC scores
    (forward with use_itm_head=False)."""
    from transformers import AutoImageProcessor, AutoTokenizer

    import tiny_models

    folder = tmp_path / "blip"
    ref = tiny_models.make_hf_blip_itm(folder)
    model = open_checkpoint(folder)
    assert set(model.modalities) == {Modality.IMAGE, Modality.TEXT} and model.embed_dim == 16
    texts = ["a photo of a red circle", "the blue square"]
    imgs = _images(sizes=((32, 32), (48, 64)))
    img_vecs = model.encode(Modality.IMAGE, _items(Modality.IMAGE, imgs))
    txt_vecs = model.encode(Modality.TEXT, _items(Modality.TEXT, texts))
    tok = AutoTokenizer.from_pretrained(str(folder))
    pix = AutoImageProcessor.from_pretrained(str(folder))(images=imgs, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        for i in range(len(imgs)):
            enc = tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
            scores = ref(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                         pixel_values=pix[i:i + 1].expand(len(texts), -1, -1, -1), use_itm_head=False).itm_score
            np.testing.assert_allclose(txt_vecs @ img_vecs[i], scores.diagonal().numpy(), atol=1e-4)
