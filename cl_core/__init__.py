"""Contrastive Lens core: Qt-free checkpoints, readers, encoders and embedding jobs."""

__version__ = "0.1.0"
