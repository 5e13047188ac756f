"""Error types. Every message names the file (or key) and the reason, because users act on it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Failure:
    """One input that could not be used, and why; a job lists these and goes on with the rest."""

    source: str
    reason: str
    stage: str  # read | encode | quarantine | job

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


NOT_PROBLEMS = ("skipped", "note")  # stages that say something but are no failure of the job


def problems(failures: list[Failure]) -> list[Failure]:
    """The failures that are problems (not a skipped manifest nor a note): what exit codes and counts use."""
    return [f for f in failures if f.stage not in NOT_PROBLEMS]


class ClensError(Exception):
    """Base class for errors Contrastive Lens reports to the user instead of crashing."""


class CheckpointError(ClensError):
    """A checkpoint cannot be opened: unknown format, missing files, wrong keys or shapes."""


class ArchitectureNeeded(CheckpointError):
    """A lone state dict that does not say its architecture: the user names it (--arch, or the window asks)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint would run code if loaded (pickle globals, TorchScript, remote code)."""


class ReaderError(ClensError):
    """One input file cannot be read; the job goes on with the others."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self):  # pickles across processes with both fields, not the joined message
        return (type(self), (self.source, self.reason))


class UnsupportedInputError(ReaderError):
    """The file's content is of a kind no reader accepts."""


class DimensionMismatchError(ClensError):
    """Two embedding spaces that must agree do not (tower vs tower, index vs model)."""

    def __init__(self, what_a: str, dim_a: int, what_b: str, dim_b: int) -> None:
        super().__init__(f"embedding dimensions differ: {what_a} gives {dim_a}-d vectors, {what_b} gives {dim_b}-d")
        self.dims = (dim_a, dim_b)


class ModalityError(ClensError):
    """The model has no tower for the requested modality."""


class Cancelled(ClensError):
    """Raised inside long jobs when the user cancelled; partial results are kept by the caller."""
