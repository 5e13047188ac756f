"""The part of embedding a decoder worker process can do without the model's weights: route an item to a
tower the model has, and run that tower's preprocessing. The main process then only batches and runs the
forward pass, so preprocessing overlaps with it instead of queueing in front of it.

Prepared inputs travel back as numpy arrays (plain pickled bytes; torch tensors would go through shared-
memory file handles, one per tensor).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from cl_core.errors import ReaderError
from cl_core.modality import Item, Modality
from cl_core.models.base import ItemPreparer, Prepared
from cl_core.readers.multichannel import image_to_stack

if TYPE_CHECKING:
    from cl_core.models.base import BaseModel

# per item: prepared arrays + window groups, a reason it could not be prepared, or None (prepare in the main process)
PreparedArrays = tuple[dict[str, np.ndarray], list[int] | None]
ItemOutcome = PreparedArrays | str | None


def fit_to(modalities: tuple[Modality, ...], item: Item) -> Item:
    """Route an item to a tower the model has (an RGB image may feed a 3-channel stack tower)."""
    if item.modality in modalities:
        return item
    if item.modality is Modality.IMAGE and Modality.MULTICHANNEL in modalities:
        return image_to_stack(item)
    raise ReaderError(item.source, f"model has no {item.modality.value} tower (it embeds "
                                   f"{', '.join(m.value for m in modalities)})")


@dataclass(frozen=True)
class Preparation:
    """Picklable: the model's modalities and its per-item preparers, no weights."""

    modalities: tuple[Modality, ...]
    preparers: dict[Modality, ItemPreparer] = field(default_factory=dict)

    @classmethod
    def of(cls, model: BaseModel) -> Preparation:
        preparers = {m: p for m in model.modalities if (p := model.item_preparer(m)) is not None}
        return cls(tuple(model.modalities), preparers)

    def run(self, items: list[Item]) -> tuple[list[Item], list[ItemOutcome]]:
        """Fit and prepare each item; a prepared item comes back without its decoded data."""
        out_items: list[Item] = []
        outcomes: list[ItemOutcome] = []
        for item in items:
            try:
                fitted = fit_to(self.modalities, item)
                preparer = self.preparers.get(fitted.modality)
                if preparer is None:
                    out_items.append(fitted)
                    outcomes.append(None)
                    continue
                prepared = preparer(fitted)
                names = getattr(fitted.data, "channel_names", None)  # a stack's names travel back (for notes)
                out_items.append(replace(fitted, data=None, meta={**fitted.meta, "channel_names": names})
                                 if names else replace(fitted, data=None))
                outcomes.append(({k: v.numpy() for k, v in prepared.inputs.items()}, prepared.groups))
            except ReaderError as exc:
                out_items.append(item)
                outcomes.append(exc.reason)
            except Exception as exc:  # noqa: BLE001 - a preprocessing bug costs this item, not the job
                out_items.append(item)
                outcomes.append(f"could not be preprocessed: {type(exc).__name__}: {exc}")
        return out_items, outcomes


def rebuild(arrays: PreparedArrays) -> Prepared:
    inputs, groups = arrays
    return Prepared({k: torch.from_numpy(v) for k, v in inputs.items()}, groups)
