"""The choices a front end offers (command-line flags, combo boxes), importable without torch or faiss so
`clens --help` and the window's first paint stay fast. The modules that act on them import them from here."""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
FUSIONS = ("mean", "symile", "gram")  # how several query vectors combine (cl_core.objectives)
OBJECTIVE_NAMES = ("info_nce", "siglip", "dcl", "mv_infonce", "mv_dhel", "symile", "gram")  # cl_core.objectives
AUTO_FUSION = "auto"  # the model's own: the fusion of the objective it was trained with (recorded), else mean
# the fusion that scores several query items as an objective trained the model to; the rest train cosines: mean
OBJECTIVE_FUSION = {"symile": "symile", "gram": "gram"}


def own_fusion(objective: str | None, parts: int) -> tuple[str, str]:
    """The fusion a query of `parts` items gets by default from a model trained with `objective` (None: not
    recorded), and why, in words."""
    fusion = OBJECTIVE_FUSION.get(objective or "", "mean")
    if fusion != "mean" and parts >= 2:
        return fusion, f"{fusion} fusion: the model was trained with the {objective} objective (its config says so)"
    return "mean", "weighted mean of the query items"


DEFAULT_TEMPLATES = ("{}", "a {}", "this is a {}", "an example of {}")  # zero-shot prompts ({}: the label)
INDEX_KINDS = ("flat", "hnsw", "ivfpq", "binary")  # cl_core.search.kinds
PROJECTIONS = ("pca", "umap", "tsne")  # cl_core.analysis.projection

# Hits below this relevance (the probability that a hit is relevant, cl_core.search.relevance) are not shown by
# `clens search` or the window unless everything is asked for. Chosen on the shapes world's label queries
# ("a red circle" against 300 single shapes with captions and sounds): at 0.4 precision 0.89, recall 0.54;
# at 0.5 precision 0.98 but recall 0.42 (the fitted probabilities are a little shy for short label queries,
# being fitted on the gallery's longer captions). tests/test_relevance.py holds the goal.
DEFAULT_MIN_RELEVANCE = 0.4

# open_clip architecture names a lone CLIP state dict can be opened as (their configs: cl_core.models.archs)
ARCH_BASES = ("ViT-B-32", "ViT-B-32-256", "ViT-B-16", "ViT-B-16-plus-240", "ViT-L-14", "ViT-L-14-336", "ViT-H-14",
              "ViT-g-14", "ViT-bigG-14", "RN50", "RN101", "RN50x4", "RN50x16", "RN50x64")
ARCH_NAMES = tuple(sorted((*ARCH_BASES, *(f"{b}-quickgelu" for b in ARCH_BASES))))
