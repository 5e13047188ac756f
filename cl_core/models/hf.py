"""Hugging Face folders: CLIPModel, SiglipModel, ClapModel and any model exposing get_<modality>_features.

Weights, processors and tokenizers all come from the folder, offline. Code never comes from it:
`auto_map` configs are refused, trust_remote_code is never passed, and pickled weights need opt-in and
then load weights-only through our own loader.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cl_core.errors import CheckpointError, UnsafeCheckpointError
from cl_core.formats import PICKLE_SUFFIXES, SAFETENSORS_SUFFIX
from cl_core.modality import Item, Modality
from cl_core.models.base import BaseModel, ItemPreparer, Prepared
from cl_core.models.config_limits import read_config
from cl_core.models.keys import key_mismatch
from cl_core.models.preprocess import resample, windows
from cl_core.models.safety import load_weights, validate_safetensors

FEATURE_METHODS = {Modality.IMAGE: "get_image_features", Modality.TEXT: "get_text_features",
                   Modality.AUDIO: "get_audio_features"}
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")  # tokenizers write 1e30 sentinels
MAX_LENGTH_PADDING = ("siglip", "siglip2")  # trained on max_length-padded text without a mask


class BlipRetrievalFeatures(torch.nn.Module):
    """BLIP's image-text contrastive embeddings from a BlipForImageTextRetrieval checkpoint, computed as its
    forward does with use_itm_head=False ([CLS] states through vision_proj and text_proj); the ITM head,
    which scores pairs jointly, is not an embedding and is not used."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.inner = model
        self.embed_dim = int(model.config.image_text_hidden_size)

    def get_image_features(self, pixel_values: torch.Tensor, **_: Any) -> torch.Tensor:
        states = self.inner.vision_model(pixel_values=pixel_values).last_hidden_state
        return self.inner.vision_proj(states[:, 0, :])

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                          **_: Any) -> torch.Tensor:
        states = self.inner.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.inner.text_proj(states[:, 0, :])


RETRIEVAL_WRAPPERS = {"BlipForImageTextRetrieval": BlipRetrievalFeatures}


def read_hf_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    cfg = read_config(path, "Hugging Face config")
    if cfg.get("auto_map"):
        code = sorted(p.name for p in folder.glob("*.py"))
        raise UnsafeCheckpointError(
            f"{folder}: config.json has auto_map, so this model needs its own Python code"
            + (f" ({', '.join(code)})" if code else "") + "; remote code is never run (trust_remote_code is off)")
    return cfg


def _weights_in(folder: Path) -> tuple[list[Path], list[Path]]:
    safes = sorted(folder.glob(f"*{SAFETENSORS_SUFFIX}"))
    pickles = sorted(p for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES
                     and p.name.startswith(("pytorch_model", "model")))
    return safes, pickles


@dataclass(frozen=True)
class HFImagePreparer:
    """One image through the model's own image processor (fixed output size), in a worker process."""

    processor: Any

    def __call__(self, item: Item) -> Prepared:
        return Prepared(image_inputs(self.processor(images=[item.data], return_tensors="pt")))


def image_inputs(encoded: Any) -> dict[str, torch.Tensor]:
    """Everything the image processor made: pixel values, and for SigLIP2's NaFlex the patch mask and the
    grid shapes (all fixed-size per image, so batches concatenate)."""
    return {k: v for k, v in encoded.items() if isinstance(v, torch.Tensor)}


class HFModel(BaseModel):
    model: Any
    tokenizer: Any = None
    image_processor: Any = None
    feature_extractor: Any = None
    model_type: str = ""
    text_max_length: int | None = None

    def prepare(self, modality: Modality, items: list[Item]) -> Prepared:
        if modality is Modality.TEXT:
            texts = [str(it.data) for it in items]
            if self.model_type in MAX_LENGTH_PADDING:
                # as SigLIP was trained and as its processor is used: max_length padding, no attention mask
                enc = self.tokenizer(texts, padding="max_length", truncation=True,
                                     max_length=self.text_max_length, return_tensors="pt")
                return Prepared({"input_ids": enc["input_ids"]})
            else:
                enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.text_max_length,
                                     return_tensors="pt")
            return Prepared({k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")})
        if modality is Modality.IMAGE:
            return Prepared(image_inputs(self.image_processor(images=[it.data for it in items], return_tensors="pt")))
        # audio stays batch-prepared here: some feature extractors pad to the longest clip of the batch
        fe = self.feature_extractor
        rate = int(fe.sampling_rate)
        max_samples = int(getattr(fe, "nb_max_samples", 0) or rate * 10)
        chunks: list[np.ndarray] = []
        groups = []
        for it in items:
            wins = windows(resample(it.data, rate), max_samples)
            chunks.extend(wins)
            groups.append(len(wins))
        enc = fe(chunks, sampling_rate=rate, return_tensors="pt")
        inputs = {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}
        return Prepared(inputs, groups)

    def item_preparer(self, modality: Modality) -> ItemPreparer | None:
        return HFImagePreparer(self.image_processor) if modality is Modality.IMAGE else None

    def forward(self, modality: Modality, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        out = getattr(self.model, FEATURE_METHODS[modality])(**inputs)
        if isinstance(out, torch.Tensor):
            return out
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            raise CheckpointError(f"{self.source}: {FEATURE_METHODS[modality]} returned no pooled features")
        return pooled

    def torch_modules(self) -> list[torch.nn.Module]:
        return [self.model]

    def preprocessing(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.image_processor is not None:
            ip = self.image_processor
            out["image"] = {"processor": type(ip).__name__, "size": _plain(getattr(ip, "size", None)),
                            "crop_size": _plain(getattr(ip, "crop_size", None)),
                            "mean": _plain(getattr(ip, "image_mean", None)), "std": _plain(getattr(ip, "image_std", None)),
                            "resample": _plain(getattr(ip, "resample", None))}
        if self.tokenizer is not None:
            out["text"] = {"tokenizer": type(self.tokenizer).__name__, "max_length": self.text_max_length,
                           "padding": "max_length" if self.model_type in MAX_LENGTH_PADDING else "longest"}
        if self.feature_extractor is not None:
            fe = self.feature_extractor
            out["audio"] = {"feature_extractor": type(fe).__name__, "sample_rate": fe.sampling_rate,
                            "window_samples": getattr(fe, "nb_max_samples", None)}
        return out


def _plain(value: Any) -> Any:
    """Processor attributes (SizeDict, enums, tuples) as JSON-friendly values."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if hasattr(value, "__dict__") and not hasattr(value, "name"):
        return {k: _plain(v) for k, v in vars(value).items() if v is not None and not k.startswith("_")}
    return getattr(value, "name", str(value))


def quiet_transformers() -> None:
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def load_hf_folder(folder: Path, device: torch.device, allow_pickle: bool = False) -> HFModel:
    import transformers
    from transformers import AutoConfig, AutoModel

    quiet_transformers()
    raw = read_hf_config(folder)
    safes, pickles = _weights_in(folder)
    if not safes and not pickles:
        raise CheckpointError(f"{folder}: Hugging Face config found but no weights (*.safetensors)")
    for s in safes:
        validate_safetensors(s)
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{folder}: cannot read config.json: {exc}") from None
    arch = (raw.get("architectures") or [""])[0]
    cls: Any = getattr(transformers, arch, None) if arch else None
    if cls is None or not isinstance(cls, type):
        cls = AutoModel
    try:
        if safes:
            model, info = cls.from_pretrained(str(folder), config=config, local_files_only=True,
                                              trust_remote_code=False, use_safetensors=True,
                                              output_loading_info=True)
            missing = [k for k in info.get("missing_keys", []) if not k.endswith("position_ids")]
            mismatched = info.get("mismatched_keys", [])
            if missing or mismatched:
                raise CheckpointError(f"{folder}: weights do not fit {type(model).__name__}: "
                                      + (f"missing keys: {', '.join(sorted(missing)[:10])} " if missing else "")
                                      + (f"wrong shapes: {mismatched[:6]}" if mismatched else ""))
        else:
            sd = load_weights(pickles[0], allow_pickle=allow_pickle)
            model = cls.from_config(config) if cls is AutoModel else cls(config)
            expected = {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}
            problem = key_mismatch(expected, {k: v for k, v in sd.items() if not k.endswith("position_ids")})
            if problem:
                raise CheckpointError(f"{pickles[0]}: weights do not fit {type(model).__name__}: {problem}")
            model.load_state_dict(sd, strict=False)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - size mismatches and the like come back as ValueError/RuntimeError
        raise CheckpointError(f"{folder}: cannot load the model: {exc}") from None
    model.eval()
    if type(model).__name__ in RETRIEVAL_WRAPPERS:
        model = RETRIEVAL_WRAPPERS[type(model).__name__](model).eval()
    mods = [m for m, meth in FEATURE_METHODS.items() if callable(getattr(model, meth, None))]
    adapter = HFModel(name=folder.name, format="huggingface", source=folder, modalities=(),
                      embed_dim=0, device=torch.device("cpu"))
    adapter.model = model
    adapter.model_type = str(raw.get("model_type", ""))
    usable: list[Modality] = []
    if Modality.TEXT in mods:
        adapter.tokenizer = _load_part("AutoTokenizer", folder)
        if adapter.tokenizer is not None:
            usable.append(Modality.TEXT)
            tcfg = getattr(config, "text_config", config)
            adapter.text_max_length = int(getattr(tcfg, "max_position_embeddings", 0) or 77)
    if Modality.IMAGE in mods:
        adapter.image_processor = _load_part("AutoImageProcessor", folder)
        if adapter.image_processor is not None:
            usable.append(Modality.IMAGE)
    if Modality.AUDIO in mods:
        adapter.feature_extractor = _load_part("AutoFeatureExtractor", folder)
        if adapter.feature_extractor is not None:
            usable.append(Modality.AUDIO)
    if len(usable) < 1:
        raise CheckpointError(f"{folder}: {type(model).__name__} exposes no get_*_features method with a "
                              "processor in the folder")
    adapter.modalities = tuple(usable)
    adapter.embed_dim = int(getattr(model, "embed_dim", 0)) or _projection_dim(config, folder)
    adapter.logit_scale, adapter.logit_bias = _logit_params(model)
    adapter.batch_sizes = {Modality.IMAGE: 32, Modality.TEXT: 128, Modality.AUDIO: 8}
    return adapter.to(device)  # type: ignore[return-value]


def _load_part(kind: str, folder: Path) -> Any:
    import transformers

    loader = getattr(transformers, kind)
    for name in PROCESSOR_FILES:  # checked before transformers builds anything from them
        if (folder / name).is_file():
            read_config(folder / name, name)
    try:
        return loader.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except ImportError as exc:  # e.g. SigLIP's tokenizer without sentencepiece or protobuf installed
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{folder}: its {kind.removeprefix('Auto').lower()} needs a library that is not "
                              f"installed ({first[:200]}); install it, e.g. pip install sentencepiece protobuf"
                              ) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _projection_dim(config: Any, folder: Path) -> int:
    for attr in ("projection_dim", "projection_size"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    tcfg = getattr(config, "text_config", None)
    value = getattr(tcfg, "hidden_size", None) if tcfg is not None else None
    if isinstance(value, int) and value > 0:
        return value  # SigLIP: the pooled output lives in the text width
    raise CheckpointError(f"{folder}: cannot tell the embedding dimension from config.json")


def _logit_params(model: Any) -> tuple[float, float | None]:
    scale = getattr(model, "logit_scale", None)
    if scale is None:
        scale = getattr(model, "logit_scale_t", None)  # CLAP keeps one per direction
    bias = getattr(model, "logit_bias", None)
    s = float(scale.detach().float().exp()) if isinstance(scale, torch.Tensor) else 1.0 / 0.07
    b = float(bias.detach().float()) if isinstance(bias, torch.Tensor) else None
    return s, b
