"""Models named by a Hugging Face hub id (`org/name`, `hf-hub:org/name`, optionally `@revision`).

Resolved with huggingface_hub into the user's normal cache (so what is already there serves, and offline
or with HF_HUB_OFFLINE=1 only the cache is used). Only configs, tokenizer files and weights are fetched —
safetensors first; pickled weights only when pickles are allowed — never code (`*.py` is never on the list,
and remote code is never trusted when loading)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cl_core.errors import CheckpointError
from cl_core.task import TaskState

PREFIX = "hf-hub:"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}(@[\w./-]{1,128})?$")
FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.bpe", "*.bpe.gz"]
PICKLED = ["*.bin", "*.pt", "*.pth"]
CONFIG_FILES = [f for f in FILES if f != "*.safetensors"]  # a config and tokenizer named by another model


def hub_id(spec: str | Path) -> tuple[str, str | None] | None:
    """(repo id, revision) when `spec` names a hub model rather than a local path, else None."""
    text = str(spec)
    if text.startswith(PREFIX):
        text = text[len(PREFIX):]
    elif Path(text).expanduser().exists() or text.startswith((".", "/", "~")):
        return None
    if not HUB_ID.match(text) or ".." in text:
        return None
    repo, _, revision = text.partition("@")
    return repo, revision or None


def resolve(spec: str | Path, allow_pickle: bool = False, state: TaskState | None = None,
            files: list[str] | None = None) -> Path:
    """The local folder of a hub model: from the cache, or downloaded into it (configs, tokenizer, weights;
    only `files` when given)."""
    found = hub_id(spec)
    if found is None:
        raise CheckpointError(f"{spec}: not a hub id (org/name)")
    repo, revision = found
    try:
        import huggingface_hub as hh
        from huggingface_hub import errors as hub_errors
    except ImportError:
        raise CheckpointError(f"{spec}: opening hub ids needs huggingface_hub (pip install huggingface_hub)") from None
    progress = _progress_class(state, repo)

    def fetch(patterns: list[str]) -> Path:
        return Path(hh.snapshot_download(repo, revision=revision, allow_patterns=patterns, ignore_patterns=["*.py"],
                                         tqdm_class=progress))

    try:
        folder = fetch(files or FILES)
        if files is None and allow_pickle and not any(folder.rglob("*.safetensors")):
            folder = fetch(FILES + PICKLED)
    except hub_errors.LocalEntryNotFoundError:
        raise CheckpointError(
            f"{spec}: not in the Hugging Face cache, and the hub cannot be reached (offline, or HF_HUB_OFFLINE=1); "
            "open it once with a network connection, or give a local folder") from None
    except hub_errors.GatedRepoError:
        raise CheckpointError(f"{spec}: the model is gated: accept its terms on huggingface.co and log in "
                              "(huggingface-cli login)") from None
    except hub_errors.RepositoryNotFoundError:
        raise CheckpointError(f"{spec}: no such model on the Hugging Face hub (or it is private)") from None
    except hub_errors.RevisionNotFoundError:
        raise CheckpointError(f"{spec}: no revision {revision!r} of {repo}") from None
    except (hub_errors.HfHubHTTPError, OSError, ValueError) as exc:
        raise CheckpointError(f"{spec}: cannot fetch from the Hugging Face hub: {str(exc).splitlines()[0]}") from None
    return folder


def _progress_class(state: TaskState | None, repo: str) -> Any:
    """A tqdm class that reports to `state` instead of drawing (the CLI and the window draw their own)."""
    from tqdm.auto import tqdm

    class Progress(tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self._done = 0
            self._of = int(kwargs.get("total") or 0)

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            if state is not None:
                state.check_cancelled()
                state.set_progress(self._done, self._of, f"downloading {repo}")
            return None

    return Progress
