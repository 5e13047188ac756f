"""Tiny random open_clip checkpoints in the layouts people download, with open_clip's own embeddings of
fixed images and texts, for tests/test_openclip_refs.py. Run once in a throwaway environment that has
open_clip and timm (they need torchvision, which the app does not install); only the small outputs are
committed:

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 open_clip_torch timm transformers \
        safetensors pillow
    /tmp/refvenv/bin/python scripts/reference_fixtures/make_openclip_refs.py tests/fixtures/openclip_refs

Each model folder is the hub layout (open_clip_config.json + open_clip_model.safetensors, weights stored
as float16 and rounded to it before the references are computed). Configs and tokenizers a config names
by hub id (BiomedCLIP's PubMedBERT, SigLIP's tokenizer) are tiny stand-ins under `_hub/`, which the tests
lay out as a Hugging Face cache. The references are what open_clip itself gives when it loads the folder
as a hub id from that cache (`hf-hub:`), with its own preprocessing and tokenizer.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TEXTS = ["A photo of a RED circle!", "tumour cells, dense &amp; dark", "a dog",
         "the_quick brown fox   jumps over the lazy dog again and again and again"]
OPENAI = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}
BERT_NAME = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
SIGLIP_TOK = "timm/ViT-B-16-SigLIP"

MODELS: dict[str, dict] = {
    # OpenAI RN50's layout (ModifiedResNet, QuickGELU), shrunk
    "rn": {"model_cfg": {"embed_dim": 32, "quick_gelu": True,
                         "vision_cfg": {"image_size": 64, "layers": [1, 2, 1, 1], "width": 8, "patch_size": None},
                         "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 8, "heads": 2,
                                      "layers": 1}},
           "preprocess_cfg": OPENAI},
    # BiomedCLIP's layout: timm ViT image tower with a linear head, PubMedBERT text tower (HF), MLP projection
    "biomedclip": {"model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"timm_model_name": "vit_base_patch16_224", "timm_model_pretrained": False, "timm_pool": "",
                       "timm_proj": "linear", "image_size": 64,
                       "timm_model_kwargs": {"embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 64}},
        "text_cfg": {"hf_model_name": BERT_NAME, "hf_tokenizer_name": BERT_NAME, "hf_proj_type": "mlp",
                     "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": 24}},
        "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                           "std": [0.26862954, 0.26130258, 0.27577711]}},
    # open_clip's ViT-B-16-SigLIP layout: timm "map" pooling, bidirectional text, last-token pooling, HF tokenizer
    "siglip": {"model_cfg": {
        "embed_dim": 32, "init_logit_bias": -10, "custom_text": True,
        "vision_cfg": {"image_size": 64, "timm_model_name": "vit_base_patch16_siglip_224",
                       "timm_model_pretrained": False, "timm_pool": "map", "timm_proj": "none",
                       "timm_model_kwargs": {"embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 64}},
        "text_cfg": {"context_length": 16, "vocab_size": 0, "hf_tokenizer_name": SIGLIP_TOK,
                     "tokenizer_kwargs": {"clean": "canonicalize"}, "width": 32, "heads": 2, "layers": 2,
                     "no_causal_mask": True, "proj_bias": True, "pool_type": "last", "norm_kwargs": {"eps": 1e-6}}},
        "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic",
                           "resize_mode": "squash"}},
    # CoCa's layout (coca_ViT-B-32): attentional pooler over a ViT, text with an appended class token, decoder
    "coca": {"model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 48, "head_width": 16, "patch_size": 16,
                       "attentional_pool": True, "attn_pooler_heads": 2, "attn_pooler_queries": 8,
                       "output_tokens": True},
        "text_cfg": {"context_length": 76, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 1,
                     "embed_cls": True, "output_tokens": True},
        "multimodal_cfg": {"context_length": 76, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 1,
                           "attn_pooler_heads": 2},
        "custom_text": True},
        "preprocess_cfg": OPENAI},
    # LAION's ConvNeXt CLIPs (convnext_large_d: timm ConvNeXt trunk, default avg pool, MLP projection), shrunk
    "convnext": {"model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"timm_model_name": "convnext_base", "timm_model_pretrained": False, "timm_pool": "",
                       "timm_proj": "mlp", "timm_drop": 0.0, "image_size": 64,
                       "timm_model_kwargs": {"depths": [1, 1, 2, 1], "dims": [8, 16, 24, 32]}},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 1}},
        "preprocess_cfg": OPENAI},
    # no projection of open_clip's own: timm's classifier is the projection; max pooling
    "convnext_fc": {"model_cfg": {
        "embed_dim": 24,
        "vision_cfg": {"timm_model_name": "convnext_tiny", "timm_model_pretrained": False, "timm_pool": "max",
                       "timm_proj": "", "image_size": 64,
                       "timm_model_kwargs": {"depths": [1, 1, 1, 1], "dims": [8, 16, 24, 32]}},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 1}},
        "preprocess_cfg": OPENAI},
    # EVA02-B-16's layout (timm EVA02: RoPE, SwiGLU with inner norm, timm's classifier as projection), shrunk
    "eva02": {"model_cfg": {
        "embed_dim": 24,
        "vision_cfg": {"image_size": 64, "timm_model_name": "eva02_base_patch16_clip_224",
                       "timm_model_pretrained": False, "timm_pool": "token", "timm_proj": None,
                       "timm_model_kwargs": {"embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 64}},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 1}},
        "preprocess_cfg": OPENAI},
    # EVA01-g-14's layout (timm EVA-01: fused qkv with q/v biases, GELU MLP, no rotary embedding), shrunk
    "eva01": {"model_cfg": {
        "embed_dim": 24,
        "vision_cfg": {"image_size": 56, "timm_model_name": "eva_giant_patch14_clip_224",
                       "timm_model_pretrained": False, "timm_pool": "token", "timm_proj": None,
                       "timm_model_kwargs": {"embed_dim": 32, "depth": 2, "num_heads": 2, "img_size": 56}},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 1}},
        "preprocess_cfg": OPENAI},
    # MobileCLIP-S1's layout (timm fastvit_mci1: MobileOne branches, RepMixer, attention stage, classifier as
    # projection; bidirectional text), shrunk
    "mobileclip": {"model_cfg": {
        "embed_dim": 24, "custom_text": True,
        "vision_cfg": {"timm_model_name": "fastvit_mci1", "timm_model_pretrained": False, "timm_pool": "avg",
                       "timm_proj": None, "timm_drop": 0.0, "timm_drop_path": 0.0, "image_size": 64,
                       "timm_model_kwargs": {"layers": [1, 1, 1, 1], "embed_dims": [8, 16, 32, 64]}},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 1,
                     "no_causal_mask": True}},
        "preprocess_cfg": OPENAI},
}


def images(out: Path) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(7)
    paths = []
    for i, (w, h) in enumerate([(80, 64), (50, 90), (64, 64)]):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], -1)
        arr = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
        p = out / f"image{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def bert_stand_in(folder: Path) -> None:
    """A tiny uncased BERT (config + WordPiece vocabulary) standing in for PubMedBERT."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertTokenizerFast

    folder.mkdir(parents=True)
    words = sorted({w.strip("!,.&;") for t in TEXTS for w in t.lower().split()} - {""})
    vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz&;!,.",
                                *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"], *words]))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    backend = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=True)
    BertTokenizerFast(tokenizer_object=backend._tokenizer, do_lower_case=True, unk_token="[UNK]", sep_token="[SEP]",
                      pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]").save_pretrained(folder)
    BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=64).save_pretrained(folder)


def siglip_tokenizer_stand_in(folder: Path) -> int:
    """A tiny SentencePiece T5 tokenizer (pad 0, </s> 1, <unk> 2), as SigLIP's, trained on the texts."""
    import sentencepiece as spm
    from transformers import T5TokenizerFast

    folder.mkdir(parents=True)
    corpus = folder.parent / "corpus.txt"
    corpus.write_text("\n".join(TEXTS * 20 + ["a photo of a blue square", "a cat and a bird"] * 20) + "\n")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(folder / "spiece"), vocab_size=50,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   minloglevel=2)
    corpus.unlink()
    (folder / "spiece.vocab").unlink()
    sp = spm.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tok = T5TokenizerFast(vocab=pieces, extra_ids=0)
    tok.save_pretrained(str(folder))
    return len(tok)


def hub_cache(home: Path, repo: str, folder: Path) -> None:
    base = home / "hub" / f"models--{repo.replace('/', '--')}"
    shutil.copytree(folder, base / "snapshots" / COMMIT)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(COMMIT)
    if not (folder / "config.json").exists():  # what huggingface_hub records after a 404, so offline look-ups end
        (base / ".no_exist" / COMMIT).mkdir(parents=True)
        (base / ".no_exist" / COMMIT / "config.json").touch()


def randomise(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Every float tensor random (so no path hides behind a zero or a one), rounded to float16."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in model.state_dict().items():
        if not v.is_floating_point():
            sd[k] = v.clone()
            continue
        noise = torch.randn(v.shape, generator=g)
        if k.endswith("running_var"):
            t = 0.5 + noise.abs()
        elif k.endswith("logit_scale"):
            t = v.clone()
        elif v.ndim == 1 or "norm" in k or k.endswith(("ln_1.weight", "ln_2.weight")):
            t = v + 0.1 * noise
        else:
            t = 0.1 * noise
        sd[k] = t.to(torch.float16)
    return sd


def main(out: Path) -> None:
    home = Path(tempfile.mkdtemp())  # a Hugging Face cache of the stand-ins; set before huggingface_hub is imported
    os.environ.update(HF_HOME=str(home), HF_HUB_OFFLINE="1")
    os.environ.pop("HF_HUB_CACHE", None)
    import open_clip
    import PIL
    import timm
    import transformers
    from safetensors.torch import save_file

    only = os.environ.get("ONLY", "")  # ONLY=a,b: make just these models (into an empty folder, then copy them)
    if only:
        for name in set(MODELS) - set(only.split(",")):
            del MODELS[name]
    out.mkdir(parents=True, exist_ok=True)
    for child in out.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    hub = out / "_hub"
    bert_stand_in(hub / BERT_NAME.replace("/", "--"))
    vocab = siglip_tokenizer_stand_in(hub / SIGLIP_TOK.replace("/", "--"))
    if "siglip" in MODELS:
        MODELS["siglip"]["model_cfg"]["text_cfg"]["vocab_size"] = vocab
    for repo in (BERT_NAME, SIGLIP_TOK):
        hub_cache(home, repo, hub / repo.replace("/", "--"))
    (out / "images").mkdir()
    pics = images(out / "images")
    (out / "texts.json").write_text(json.dumps(TEXTS, indent=1) + "\n")
    for i, (name, cfg) in enumerate(MODELS.items()):
        folder = out / name
        folder.mkdir()
        (folder / "open_clip_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        tmp = Path(tempfile.mkdtemp())
        (tmp / "open_clip_config.json").write_text(json.dumps(cfg))
        model = open_clip.create_model(f"local-dir:{tmp}", pretrained=None, load_weights=False,
                                         pretrained_hf=False)
        sd = randomise(model, seed=100 + i)
        save_file({k: v.contiguous() for k, v in sd.items()}, str(folder / "open_clip_model.safetensors"))
        repo = f"clens-fixtures/{name}"  # loaded as users load BiomedCLIP & co: hf-hub ids, from the cache
        hub_cache(home, repo, folder)
        model, preprocess = open_clip.create_model_from_pretrained(f"hf-hub:{repo}")
        model.eval()
        tokenizer = open_clip.get_tokenizer(f"hf-hub:{repo}")
        from PIL import Image

        with torch.no_grad():
            pixels = torch.stack([preprocess(Image.open(p)) for p in pics])
            tokens = tokenizer(TEXTS)
            img = model.encode_image(pixels, normalize=True)
            txt = model.encode_text(tokens, normalize=True)
        np.savez(folder / "reference.npz", image=img.float().numpy(), text=txt.float().numpy(),
                 tokens=tokens.numpy())
        print(name, tuple(img.shape), tuple(txt.shape), f"{(folder / 'open_clip_model.safetensors').stat().st_size:,} B")
    versions = {"open_clip": open_clip.__version__ + os.environ.get("OPEN_CLIP_SOURCE", ""), "timm": timm.__version__, "torch": torch.__version__,
                "transformers": transformers.__version__, "pillow": PIL.__version__,
                "python": sys.version.split()[0]}
    (out / "versions.json").write_text(json.dumps(versions, indent=1) + "\n")
    print(versions)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
