"""Readers turn files into Items. Chosen by content (magic bytes), not only by extension."""

from cl_core.readers.registry import READERS, ReaderSpec, ReadLimits, read_path

__all__ = ["READERS", "ReadLimits", "ReaderSpec", "read_path"]
