"""A file's channels matched to a model's by name: case, spaces, hyphens and underscores do not count, and
common aliases of the same marker match (PanCK / pan-cytokeratin, Ki67 / MKI67, PD-L1 / CD274, DAPI / Hoechst).
Extra channels are ignored and listed; a missing one is named with the names that were tried, so a 40-channel
panel exported by another tool opens under a model trained on six."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# each group: one marker's names as exporters write them (the first is how we show it)
ALIAS_GROUPS: tuple[tuple[str, ...], ...] = (
    ("DAPI", "Hoechst", "Hoechst 33342", "nuclei", "nuclear stain", "DNA"),
    ("panCK", "pan-cytokeratin", "pancytokeratin", "pan-keratin", "cytokeratin", "CK", "keratin", "AE1/AE3"),
    ("PD-L1", "PDL1", "CD274", "B7-H1"),
    ("PD-1", "PD1", "PDCD1", "CD279"),
    ("Ki67", "Ki-67", "MKI67", "MIB-1"),
    ("CD8", "CD8a", "CD8A"),
    ("CD3", "CD3e", "CD3E"),
    ("CD20", "MS4A1"),
    ("CD31", "PECAM1", "PECAM-1"),
    ("CD45", "PTPRC", "LCA"),
    ("CD68",),
    ("CD163",),
    ("FOXP3", "FoxP3"),
    ("SMA", "alpha-SMA", "aSMA", "ACTA2", "α-SMA"),
    ("E-cadherin", "ECAD", "CDH1"),
    ("Vimentin", "VIM"),
    ("HER2", "ERBB2"),
    ("ER", "ESR1", "estrogen receptor"),
    ("PR", "PGR", "progesterone receptor"),
)


def normalise(name: str) -> str:
    """Lower case without spaces, hyphens, underscores, dots or slashes ("Pan-CK" -> "panck")."""
    return re.sub(r"[\s\-_./]+", "", name.strip().lower())


_CANONICAL = {normalise(alias): group[0] for group in ALIAS_GROUPS for alias in group}


def canonical(name: str) -> str:
    """The marker a name stands for (its group's first name), or the normalised name when no group has it."""
    key = normalise(name)
    return normalise(_CANONICAL.get(key, key))


def aliases(name: str) -> tuple[str, ...]:
    """The names that match `name` (its group), itself first."""
    key = normalise(name)
    group = next((g for g in ALIAS_GROUPS if key in {normalise(a) for a in g}), ())
    return (name, *(a for a in group if normalise(a) != key))


@dataclass(frozen=True)
class ChannelMatch:
    """Where each of the model's channels is in the file, and what is missing or left over."""

    indices: tuple[int, ...]  # the file's channel for each model channel (only when nothing is missing)
    renamed: tuple[tuple[str, str], ...]  # (file's name, model's name) matched through an alias
    missing: tuple[str, ...]  # model channels the file lacks
    extra: tuple[str, ...]  # file channels the model does not read (ignored)

    def describe(self) -> list[str]:
        lines = [f"{f} is read as {m}" for f, m in self.renamed]
        if self.extra:
            lines.append(f"ignored (the model does not read them): {', '.join(self.extra)}")
        if self.missing:
            lines.append(f"missing: {', '.join(self.missing)}")
        return lines


def match_channels(expected: Sequence[str], have: Sequence[str]) -> ChannelMatch:
    """Match the model's channel names to a file's. An exact (normalised) name wins over an alias; two file
    channels for one marker: the first is used and the other counted as extra."""
    exact: dict[str, int] = {}
    by_marker: dict[str, int] = {}
    for n, name in enumerate(have):
        exact.setdefault(normalise(name), n)
        by_marker.setdefault(canonical(name), n)
    indices: list[int] = []
    renamed: list[tuple[str, str]] = []
    missing: list[str] = []
    for want in expected:
        i: int | None = exact.get(normalise(want))
        if i is None:
            i = by_marker.get(canonical(want))
            if i is not None:
                renamed.append((have[i], want))
        if i is None:
            missing.append(want)
        else:
            indices.append(i)
    used = set(indices)
    extra = tuple(n for i, n in enumerate(have) if i not in used)
    return ChannelMatch(tuple(indices) if not missing else (), tuple(renamed), tuple(missing), extra)


def channel_notes(expected: Sequence[str], stacks: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[str, str]]:
    """(source, note) once per distinct set of channel names among `stacks` ((source, names) pairs): which of a
    file's channels are read as which model channel through an alias, and which are ignored. Stacks that match
    the model's names exactly get no note."""
    seen: dict[tuple[str, ...], list[str]] = {}
    for source, names in stacks:
        seen.setdefault(tuple(names), []).append(source)
    out = []
    for names, sources in seen.items():
        found = match_channels(expected, names)
        if found.missing or not (found.renamed or found.extra):
            continue  # a missing channel is its file's failure; nothing to say when all match by name
        where = sources[0] + (f" and {len(sources) - 1} more with the same channels" if len(sources) > 1 else "")
        out.append((where, "; ".join(found.describe())))
    return out
