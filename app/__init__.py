"""Contrastive Lens desktop GUI (PySide6). All work is delegated to cl_core."""
