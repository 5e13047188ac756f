"""The tensors of a TorchScript archive (OpenAI's released CLIP `.pt` files are ones), read without running it.

Loading it as TorchScript would compile and run the archive's `code/`; here the code is never read. Its `data.pkl` is
unpickled by torch's own weights-only unpickler (the one behind `torch.load(weights_only=True)`), with one
inert stand-in class per `__torch__.*` module class the pickle names: instances only keep the attribute dict
they are given, so the pickle can build nothing but tensors, containers and these stand-ins. Anything else it
asks for (a function to call, another class) is refused by torch's allow-list and named.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path
from typing import Any

import torch

from cl_core.errors import CheckpointError, UnsafeCheckpointError

MAX_DATA_PKL = 64 * 1024 * 1024  # the object pickle holds structure, not weights


class _Stub:
    """An archive's module object: only its attributes (tensors, submodules, plain values)."""

    attrs: dict[str, Any]

    def __setstate__(self, state: Any) -> None:
        self.attrs = dict(state) if isinstance(state, dict) else {}


def _module_classes(blob: bytes) -> list[tuple[str, str]]:
    names = []
    for op, arg, _pos in pickletools.genops(blob):
        if op.name == "GLOBAL":
            module, _, name = str(arg).partition(" ")
            if module == "__torch__" or module.startswith("__torch__."):
                names.append((module, name))
        elif op.name == "STACK_GLOBAL":
            raise UnsafeCheckpointError("its object pickle uses STACK_GLOBAL, which TorchScript archives do not")
    return list(dict.fromkeys(names))


def _flatten(obj: Any, prefix: str, out: dict[str, torch.Tensor], depth: int = 0) -> None:
    if depth > 64:
        raise CheckpointError("module tree deeper than 64 levels")
    if not isinstance(obj, _Stub):
        return
    for key, value in getattr(obj, "attrs", {}).items():
        if isinstance(value, torch.Tensor):
            out[prefix + key] = value.detach()
        elif isinstance(value, _Stub):
            _flatten(value, f"{prefix}{key}.", out, depth + 1)


def torchscript_state_dict(path: Path) -> dict[str, torch.Tensor]:
    name = str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            pkls = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pkls) != 1:
                raise CheckpointError(f"{name}: a TorchScript archive without one data.pkl")
            prefix = pkls[0][: -len("data.pkl")]
            if zf.getinfo(pkls[0]).file_size > MAX_DATA_PKL:
                raise CheckpointError(f"{name}: its object pickle is over {MAX_DATA_PKL >> 20} MB")
            blob = zf.read(pkls[0])
            stubs: list[Any] = [(type(cls, (_Stub,), {"__module__": module, "__qualname__": cls}), f"{module}.{cls}")
                     for module, cls in _module_classes(blob)]

            def persistent_load(pid: Any) -> Any:
                _kind, storage_type, key, _location, numel = pid
                dtype = torch.uint8 if storage_type is torch.UntypedStorage else storage_type.dtype
                info = zf.getinfo(f"{prefix}data/{key}")
                if info.file_size != int(numel) * torch._utils._element_size(dtype):
                    raise CheckpointError(f"storage {key} holds {info.file_size} bytes, not {numel} x {dtype}")
                raw = torch.UntypedStorage.from_buffer(zf.read(info), dtype=torch.uint8)
                return torch.storage.TypedStorage(wrap_storage=raw, dtype=dtype, _internal=True)

            from torch import _weights_only_unpickler as wou

            with torch.serialization.safe_globals(stubs):
                unpickler = wou.Unpickler(io.BytesIO(blob), encoding="utf-8")
                unpickler.persistent_load = persistent_load  # type: ignore[method-assign]
                root = unpickler.load()
    except (UnsafeCheckpointError, CheckpointError) as exc:
        raise type(exc)(f"{name}: {exc}" if not str(exc).startswith(name) else str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a refusal or corruption becomes one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Unsupported global" in first or "unrecognized function" in first or "blocked" in first:
            raise UnsafeCheckpointError(f"{name}: refused: its object pickle asks for more than module data "
                                        f"and tensors ({first[:240]})") from None
        raise CheckpointError(f"{name}: cannot read as a TorchScript archive: {first[:240]}") from None
    out: dict[str, torch.Tensor] = {}
    _flatten(root, "", out)
    if not out:
        raise CheckpointError(f"{name}: a TorchScript archive holding no module tensors")
    return out
