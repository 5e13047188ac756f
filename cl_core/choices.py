"""The choices a front end offers (command-line flags, combo boxes), importable without torch or faiss so
`clens --help` and the window's first paint stay fast. The modules that act on them import them from here."""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
FUSIONS = ("mean", "symile", "gram")  # how several query vectors combine (cl_core.objectives)
INDEX_KINDS = ("flat", "hnsw", "ivfpq", "binary")  # cl_core.search.kinds
PROJECTIONS = ("pca", "umap", "tsne")  # cl_core.analysis.projection

# open_clip architecture names a lone CLIP state dict can be opened as (their configs: cl_core.models.archs)
ARCH_BASES = ("ViT-B-32", "ViT-B-32-256", "ViT-B-16", "ViT-B-16-plus-240", "ViT-L-14", "ViT-L-14-336", "ViT-H-14",
              "ViT-g-14", "ViT-bigG-14")
ARCH_NAMES = tuple(sorted((*ARCH_BASES, *(f"{b}-quickgelu" for b in ARCH_BASES))))
