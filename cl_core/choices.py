"""The choices a front end offers (command-line flags, combo boxes), importable without torch or faiss so
`clens --help` and the window's first paint stay fast. The modules that act on them import them from here."""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
FUSIONS = ("mean", "symile", "gram")  # how several query vectors combine (cl_core.objectives)
INDEX_KINDS = ("flat", "hnsw", "ivfpq", "binary")  # cl_core.search.kinds
PROJECTIONS = ("pca", "umap", "tsne")  # cl_core.analysis.projection
