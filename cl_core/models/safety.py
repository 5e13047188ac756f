"""Loading tensors from untrusted files without running code.

safetensors are validated (header size, dtypes, offsets, shapes) before the library reads them;
pickles go only through torch's weights-only unpickler (``torch.load(weights_only=True)``; for TorchScript
archives the same unpickler on their data, their code never read) and there is no fallback. When that refuses a
file we name the globals the pickle would have imported, found by reading opcodes, never by executing.
"""

from __future__ import annotations

import json
import pickletools
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import load_file

from cl_core.errors import CheckpointError, UnsafeCheckpointError
from cl_core.formats import SAFETENSORS_SUFFIX

SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
MAX_HEADER_BYTES = 100 * 1024 * 1024

# Globals a plain state-dict pickle legitimately references; anything else is named in the refusal.
_BENIGN_PREFIXES = ("torch._utils._rebuild", "torch.", "collections.OrderedDict", "numpy.core.multiarray._reconstruct",
                    "_codecs.encode", "builtins.set")


def validate_safetensors(path: Path) -> dict[str, dict]:
    """Check a .safetensors file's header against the file; return the tensor table. Reads only the header."""
    name = str(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise CheckpointError(f"{name}: not a safetensors file (shorter than its 8-byte header length)")
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_HEADER_BYTES or n > size - 8:
            raise CheckpointError(f"{name}: malformed safetensors: header length {n} does not fit the "
                                  f"{size}-byte file")
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CheckpointError(f"{name}: malformed safetensors header: {exc}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: malformed safetensors header: not a JSON object")
    data_len = size - 8 - n
    spans = []
    table = {k: v for k, v in header.items() if k != "__metadata__"}
    for key, entry in table.items():
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise CheckpointError(f"{name}: malformed safetensors entry for {key!r}")
        dtype = entry["dtype"]
        if dtype not in SAFETENSORS_DTYPES:
            raise CheckpointError(f"{name}: tensor {key!r} has unknown dtype {dtype!r}")
        shape, offsets = entry["shape"], entry["data_offsets"]
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)):
            raise CheckpointError(f"{name}: tensor {key!r} has a malformed shape or offsets")
        begin, end = offsets
        expected = SAFETENSORS_DTYPES[dtype]
        for d in shape:
            expected *= d
        if not 0 <= begin <= end <= data_len:
            raise CheckpointError(f"{name}: tensor {key!r} offsets {offsets} lie outside the {data_len}-byte data")
        if end - begin != expected:
            raise CheckpointError(f"{name}: tensor {key!r} shape {shape} {dtype} needs {expected} bytes, "
                                  f"offsets give {end - begin}")
        spans.append((begin, end, key))
    spans.sort()
    for (_b1, e1, k1), (b2, _e2, k2) in zip(spans, spans[1:], strict=False):
        if b2 < e1:
            raise CheckpointError(f"{name}: tensors {k1!r} and {k2!r} overlap in the file")
    return table


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    validate_safetensors(path)
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - the library's own errors become a file-named message
        raise CheckpointError(f"{path}: cannot read safetensors: {exc}") from None


def is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


MAX_PICKLE_SCAN = 64 * 1024 * 1024  # bytes of a pickle read to name its globals (a zip bomb is not inflated)


def pickle_globals(path: Path) -> list[str]:
    """Every module.name a pickle (plain or inside a torch zip) would import, read from its opcodes, never
    executed; at most MAX_PICKLE_SCAN bytes of each pickle are read (streamed, never inflated whole)."""
    blobs: list[bytes] = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.filename.endswith(".pkl"):
                    with zf.open(info) as member:
                        blobs.append(member.read(MAX_PICKLE_SCAN))
    else:
        with open(path, "rb") as fh:
            blobs = [fh.read(MAX_PICKLE_SCAN)]
    found: list[str] = []
    for blob in blobs:
        found.extend(_globals_in(blob))
    return list(dict.fromkeys(found))


_STRINGS = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "SHORT_BINSTRING", "BINSTRING", "STRING")


def _globals_in(blob: bytes) -> Iterable[str]:
    """GLOBAL names, and STACK_GLOBAL's two strings, also when they come back from the memo (a pickler
    memoises a module name and fetches it again for the next global of that module)."""
    recent: list[str | None] = []  # the values pushed lately: strings, or None for anything else
    memo: dict[int, str | None] = {}
    try:
        for op, arg, _pos in pickletools.genops(blob):
            name = op.name
            if name in _STRINGS:
                recent.append(str(arg))
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(arg)] = recent[-1] if recent else None  # type: ignore[arg-type]
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                recent.append(memo.get(int(arg)))  # type: ignore[arg-type]
            elif name == "GLOBAL":
                yield str(arg).replace(" ", ".")
                recent.append(None)
            elif name == "STACK_GLOBAL":
                module, attr = (recent[-2], recent[-1]) if len(recent) >= 2 else (None, None)
                if module is not None and attr is not None:
                    yield f"{module}.{attr}"
                recent.append(None)
            elif op.stack_after and not op.stack_before:
                recent.append(None)  # some other value pushed
            recent = recent[-16:]
    except Exception:  # noqa: BLE001 - a truncated pickle still tells what it named so far
        return


def unsafe_globals(path: Path) -> list[str]:
    return [g for g in pickle_globals(path) if not g.startswith(_BENIGN_PREFIXES)]


def safe_torch_load(path: Path) -> dict[str, torch.Tensor]:
    """Load a pickled state dict with weights_only=True; a TorchScript archive's tensors without its code.
    Code-carrying pickles are refused, naming what they would import."""
    name = str(path)
    if is_torchscript(path):
        from cl_core.models.torchscript_weights import torchscript_state_dict

        return torchscript_state_dict(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every refusal or corruption becomes one clear message
        bad = unsafe_globals(path) + refused_globals(str(exc))
        if bad:
            raise UnsafeCheckpointError(
                f"{name}: refused: the pickle references objects that are not plain tensors and could run code "
                f"on loading: {', '.join(dict.fromkeys(bad[:8]))}. Save the model's state_dict() as "
                ".safetensors and open that") from None
        raise CheckpointError(f"{name}: cannot load as a weights-only PyTorch checkpoint: {first_reason(exc)}") from None
    return extract_state_dict(obj, name)


def refused_globals(message: str) -> list[str]:
    """The globals torch's weights-only unpickler named when it refused (e.g. torch.nn.modules.linear.Linear,
    which our opcode scan treats as torch's own)."""
    import re

    return re.findall(r"(?:Unsupported global|GLOBAL)\W+(?:GLOBAL\s+)?([A-Za-z_][\w.]*\.[\w]+)", message)


def first_reason(exc: BaseException) -> str:
    """torch's reason without its advice: it suggests turning weights-only loading off, which would run
    whatever code the file carries, and which this app never does."""
    lines = [li.strip() for li in str(exc).splitlines() if li.strip()]
    keep = [li for li in lines if "weights_only" not in li and "trust" not in li.lower()
            and not li.lower().startswith(("(1)", "(2)", "check the documentation", "please file an issue"))]
    return (keep[0] if keep else type(exc).__name__)[:300]


def extract_state_dict(obj: object, name: str) -> dict[str, torch.Tensor]:
    """Unwrap {'state_dict': ...}/{'model': ...} wrappers and drop a DistributedDataParallel 'module.' prefix."""
    for _ in range(3):
        if isinstance(obj, dict) and not _all_tensors(obj):
            inner = next((obj[k] for k in ("state_dict", "model", "module", "model_state_dict")
                          if k in obj and isinstance(obj[k], dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{name}: holds no state dict (a mapping of names to tensors)")
    sd = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise CheckpointError(f"{name}: holds no tensors")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _all_tensors(d: dict) -> bool:
    return all(isinstance(v, torch.Tensor) for v in d.values())


def load_weights(path: Path, allow_pickle: bool = True) -> dict[str, torch.Tensor]:
    """Load a weights file: safetensors directly; pickles weights-only, and only when allowed."""
    if path.suffix == SAFETENSORS_SUFFIX:
        return load_safetensors(path)
    if not allow_pickle:
        raise UnsafeCheckpointError(
            f"{path}: is a pickle checkpoint and no .safetensors weights were found beside it; pickles are "
            "opened only with explicit opt-in (--allow-pickle, or 'Allow pickle weights' in the model panel), "
            "and then weights-only")
    return safe_torch_load(path)
