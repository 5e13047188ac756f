"""Contrastive Lens's bundled data (demo models and cards, recipes, the CLIP vocabulary, styles), installed as
the data package `clens_resources` so a wheel or a bundle carries it; `cl_core.resources` finds it."""
