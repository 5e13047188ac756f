"""What runs inside a decoder process. Kept light on purpose: a spawned worker imports only this, the readers
and what they need (not torch), so a new decoder is ready in a fraction of a second; torch and the model's
preprocessing are imported only when a job hands the worker a preparation."""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cl_core.errors import ReaderError
from cl_core.modality import Item, Modality
from cl_core.readers import ReadLimits

if TYPE_CHECKING:
    from cl_core.embed.preparation import ItemOutcome, Preparation


PARENT_POLL_S = 1.0


def watch_parent(parent: int) -> None:
    """Runs as a decoder process starts: the process ends itself once the app that started it is gone (even
    after a kill -9 of the app), instead of lingering as an orphan."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=watch, name="clens-parent-watch", daemon=True).start()


def resolve(reader: str) -> Callable[..., list[Item]]:
    module, _, name = reader.partition(":")
    return getattr(importlib.import_module(module), name)


def warm_up(reader: str) -> None:
    """Runs in a new worker: import the reader (and what it needs) before the first file arrives."""
    resolve(reader)


def read_in_worker(reader: str, path: str, modality: Modality | None, limits: ReadLimits,
                   preparation: Preparation | None = None
                   ) -> tuple[list[Item], tuple[str, str] | None, list[ItemOutcome] | None]:
    """Runs in the worker: plain data back, so nothing the parent unpickles can break the pool.
    With a preparation, items are also fitted to the model and preprocessed here."""
    try:
        items = resolve(reader)(path, modality, limits)
    except ReaderError as exc:
        return [], (exc.source, exc.reason), None
    if preparation is None:
        return items, None, None
    import torch  # already imported by unpickling the preparation's preprocessors

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)  # the workers already run side by side with the model's threads
    fitted, outcomes = preparation.run(items)
    return fitted, None, outcomes
