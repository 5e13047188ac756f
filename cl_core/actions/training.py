"""Train a native checkpoint from a TOML recipe (resumable); the model card comes back as the result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cl_core.task import TaskState
from cl_core.train.trainer import load_recipe
from cl_core.train.trainer import train as run_training


@dataclass
class Trained:
    out: Path
    card: dict[str, Any]

    def lowest_heldout(self) -> dict[str, tuple[str, float]]:
        """Per held-out subset: the modality pair with the lowest R@5, and that R@5."""
        return {subset: min(((pair, m["R@5"]) for pair, m in pairs.items()), key=lambda kv: kv[1])
                for subset, pairs in self.card["heldout_metrics"].items()}


def train(recipe: str | Path, out: str | Path, device: str | None = None,
          state: TaskState | None = None) -> Trained:
    out = Path(out)
    return Trained(out, run_training(load_recipe(recipe), out, state, device))
