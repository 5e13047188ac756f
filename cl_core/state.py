"""Small evented state objects that panels own and the window's controller reads (glue's state objects,
napari's evented models): a panel writes its controls into one, listens to it, and never reaches into
another panel. Plain Python (psygnal), so a script or a test can drive them without Qt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from psygnal import SignalGroupDescriptor

from cl_core.choices import AUTO_FUSION, DEFAULT_MIN_RELEVANCE


@dataclass
class ModelSettings:
    """How models are opened and where embeddings are cached."""

    events: ClassVar[SignalGroupDescriptor] = SignalGroupDescriptor()  # one signal per field

    device: str = "auto"  # auto | cuda | mps | cpu
    allow_pickle: bool = False  # .bin/.pt weights where no safetensors exist (weights-only, never code)
    cache_dir: Path | None = None  # None: the user cache folder
    allow_outside_files: bool = False  # a manifest may name files outside its own folder

    def device_choice(self) -> str | None:
        return None if self.device == "auto" else self.device


@dataclass
class SearchState:
    """The query being composed in the search panel and its options."""

    events: ClassVar[SignalGroupDescriptor] = SignalGroupDescriptor()

    text: str = ""
    use_selection: bool = False  # add the selected inputs to the query (never silently: off by default)
    target: str | None = None  # a modality name, or None for any
    k: int = 10
    fusion: str = AUTO_FUSION  # the model's own (symile / gram when its config records that objective), else mean
    threshold_on: bool = True  # the same default as `clens search` (everything: untick, or --all)
    min_relevance: float = DEFAULT_MIN_RELEVANCE


@dataclass
class ProjectionState:
    """How the gallery's map is made and drawn."""

    events: ClassVar[SignalGroupDescriptor] = SignalGroupDescriptor()

    method: str = "pca"  # pca | umap | tsne
    colour_by: str = "modality"  # modality | label
    show_pairs: bool = False  # lines between the points of one sample, and the modality centroids
