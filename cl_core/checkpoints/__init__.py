"""Checkpoint files: safe loading of tensors, and detection of the checkpoint format."""
