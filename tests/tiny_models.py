"""Tiny randomly initialised models saved in every checkpoint format we read (test helpers).

The open_clip folder is written from a tiny Hugging Face CLIPModel by renaming its weights to
open_clip's layout, so transformers' own forward pass is the reference our CLIP implementation must match.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cl_core.models.clip_tokenizer import get_clip_tokenizer
from cl_core.models.native import FORMAT_TAG, NativeNet, save_native

IMAGE_SIZE = 32


def make_hf_clip(folder: Path, hidden_act: str = "quick_gelu", seed: int = 0):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, hidden_act=hidden_act,
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=1),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                           image_size=IMAGE_SIZE, patch_size=8, hidden_act=hidden_act),
        projection_dim=24)
    model = CLIPModel(cfg).eval()
    with torch.no_grad():  # random LayerNorm affine params so a mis-mapped norm cannot hide
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(str(folder), safe_serialization=True)
    vocab, merges = get_clip_tokenizer().hf_vocab_and_merges()
    tok = CLIPTokenizer(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges])
    tok.save_pretrained(str(folder))
    CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
                       ).save_pretrained(str(folder))
    return model


def hf_clip_to_openclip_state_dict(model) -> dict[str, torch.Tensor]:
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {"logit_scale": sd["logit_scale"]}

    def blocks(src: str, dst: str, n: int) -> None:
        for i in range(n):
            a, b = f"{src}.encoder.layers.{i}", f"{dst}transformer.resblocks.{i}"
            for kind in ("weight", "bias"):
                out[f"{b}.attn.in_proj_{kind}"] = torch.cat([sd[f"{a}.self_attn.{p}_proj.{kind}"] for p in "qkv"])
                out[f"{b}.attn.out_proj.{kind}"] = sd[f"{a}.self_attn.out_proj.{kind}"]
                out[f"{b}.ln_1.{kind}"] = sd[f"{a}.layer_norm1.{kind}"]
                out[f"{b}.ln_2.{kind}"] = sd[f"{a}.layer_norm2.{kind}"]
                out[f"{b}.mlp.c_fc.{kind}"] = sd[f"{a}.mlp.fc1.{kind}"]
                out[f"{b}.mlp.c_proj.{kind}"] = sd[f"{a}.mlp.fc2.{kind}"]

    cfg = model.config
    out["token_embedding.weight"] = sd["text_model.embeddings.token_embedding.weight"]
    out["positional_embedding"] = sd["text_model.embeddings.position_embedding.weight"]
    blocks("text_model", "", cfg.text_config.num_hidden_layers)
    out["ln_final.weight"] = sd["text_model.final_layer_norm.weight"]
    out["ln_final.bias"] = sd["text_model.final_layer_norm.bias"]
    out["text_projection"] = sd["text_projection.weight"].T.contiguous()
    out["visual.class_embedding"] = sd["vision_model.embeddings.class_embedding"]
    out["visual.conv1.weight"] = sd["vision_model.embeddings.patch_embedding.weight"]
    out["visual.positional_embedding"] = sd["vision_model.embeddings.position_embedding.weight"]
    for kind in ("weight", "bias"):
        out[f"visual.ln_pre.{kind}"] = sd[f"vision_model.pre_layrnorm.{kind}"]
        out[f"visual.ln_post.{kind}"] = sd[f"vision_model.post_layernorm.{kind}"]
    blocks("vision_model", "visual.", cfg.vision_config.num_hidden_layers)
    out["visual.proj"] = sd["visual_projection.weight"].T.contiguous()
    return {k: v.contiguous() for k, v in out.items()}


def openclip_model_cfg(model, quick_gelu: bool) -> dict:
    cfg = model.config
    return {
        "embed_dim": cfg.projection_dim,
        "quick_gelu": quick_gelu,
        "vision_cfg": {"image_size": IMAGE_SIZE, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32, "mlp_ratio": 2.0},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2, "mlp_ratio": 2.0},
    }


def make_openclip_folder(folder: Path, hf_model, quick_gelu: bool = True, pickle_weights: bool = False) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    sd = hf_clip_to_openclip_state_dict(hf_model)
    config = {"model_cfg": openclip_model_cfg(hf_model, quick_gelu),
              "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                                 "std": [0.26862954, 0.26130258, 0.27577711]}}
    (folder / "open_clip_config.json").write_text(json.dumps(config), encoding="utf-8")
    if pickle_weights:
        torch.save(sd, folder / "open_clip_pytorch_model.bin")
    else:
        save_file(sd, str(folder / "open_clip_model.safetensors"))
    return folder


def _word_tokenizer(folder: Path, model_max_length: int):
    """A small word-level fast tokenizer saved with the folder (SigLIP/CLAP tests need no SentencePiece)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<unk>", "</s>", "<s>"] + ("a photo of the red blue green circle square dog cat sound "
                                                 "loud quiet bird music speech tissue tumour cell").split()
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", eos_token="</s>",
                                   bos_token="<s>", model_max_length=model_max_length)
    fast.save_pretrained(str(folder))
    return fast, len(words)


def make_hf_siglip(folder: Path, seed: int = 0):
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    _, vocab = _word_tokenizer(folder, 16)
    cfg = SiglipConfig(
        text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=16, pad_token_id=0, eos_token_id=2),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=IMAGE_SIZE, patch_size=8))
    model = SiglipModel(cfg).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(str(folder))
    return model


def make_hf_siglip2(folder: Path, seed: int = 0):
    """SigLIP2 (NaFlex): images as a padded sequence of patches with a mask and their grid shape."""
    from transformers import Siglip2Config, Siglip2Model
    from transformers.models.siglip2 import Siglip2ImageProcessorPil

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    _, vocab = _word_tokenizer(folder, 64)
    cfg = Siglip2Config(
        text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=64, pad_token_id=0, eos_token_id=2),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           num_patches=16, patch_size=8))
    model = Siglip2Model(cfg).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    Siglip2ImageProcessorPil(patch_size=8, max_num_patches=16).save_pretrained(str(folder))
    return model


def make_hf_blip_itm(folder: Path, seed: int = 0):
    """BLIP image-text retrieval (Salesforce/blip-itm-* layout): ITC projections beside the ITM head."""
    from transformers import BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    _, vocab = _word_tokenizer(folder, 32)
    cfg = BlipConfig(
        text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=32, pad_token_id=0, encoder_hidden_size=32),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=IMAGE_SIZE, patch_size=8),
        image_text_hidden_size=16)
    model = BlipForImageTextRetrieval(cfg).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(str(folder))
    return model


def make_hf_clap(folder: Path, seed: int = 0):
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    _, vocab = _word_tokenizer(folder, 32)
    cfg = ClapConfig(
        text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=40, pad_token_id=0, type_vocab_size=1),
        audio_config=dict(spec_size=64, window_size=4, num_mel_bins=16, patch_size=4, patch_stride=(4, 4),
                          patch_embeds_hidden_size=16, hidden_size=32, depths=[1, 1], num_attention_heads=[2, 2],
                          enable_fusion=False),
        projection_dim=16)
    model = ClapModel(cfg).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    ClapFeatureExtractor(feature_size=16, sampling_rate=16000, hop_length=160, max_length_s=1, fft_window_size=400,
                         truncation="rand_trunc",
                         ).save_pretrained(str(folder))
    return model


def native_config(embed_dim: int = 16, stack_channels: tuple[str, ...] = ("DAPI", "panCK", "CD8")) -> dict:
    return {
        "format": FORMAT_TAG, "name": "tiny-native", "embed_dim": embed_dim,
        "towers": {
            "image": {"arch": "conv", "in_channels": 3, "widths": [8, 16],
                      "preprocess": {"size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
            "text": {"arch": "clip_text", "context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2,
                     "layers": 1},
            "audio": {"arch": "audio_conv", "widths": [8, 16],
                      "preprocess": {"sample_rate": 8000, "window_seconds": 0.5, "n_fft": 256, "hop": 64,
                                     "n_mels": 16}},
            "multichannel": {"arch": "conv", "in_channels": len(stack_channels), "widths": [8, 16],
                             "preprocess": {"size": 32, "channels": list(stack_channels)}},
        },
    }


def make_native(folder: Path, seed: int = 0, config: dict | None = None) -> Path:
    torch.manual_seed(seed)
    cfg = config or native_config()
    save_native(folder, cfg, NativeNet(cfg))
    return folder
