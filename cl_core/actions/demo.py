"""The bundled demos: a demo's model and its gallery files (written on first use), and which demo a
model or a `demo:NAME` gallery belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cl_core.demo.galleries import DEFAULT_DEMO, DEMOS, ensure_demo_gallery
from cl_core.errors import ClensError
from cl_core.formats import NATIVE_CONFIG


@dataclass
class DemoFiles:
    name: str
    model: Path
    files: list[Path]


def demo_files(name: str = DEFAULT_DEMO) -> DemoFiles:
    if name not in DEMOS:
        raise ClensError(f"no demo named {name!r} (have: {', '.join(DEMOS)})")
    if not demo_available(name):
        raise ClensError(f"the {name} demo model is missing from {DEMOS[name].model}")
    return DemoFiles(name, DEMOS[name].model, ensure_demo_gallery(name=name))


def demo_available(name: str = DEFAULT_DEMO) -> bool:
    """Is the demo's model bundled (an installation without it still runs, just without the demo)?"""
    return name in DEMOS and (DEMOS[name].model / NATIVE_CONFIG).is_file()


def demo_for_model(source: str | Path) -> str | None:
    """The demo whose bundled model this is, if any."""
    here = Path(source).resolve()
    return next((name for name, d in DEMOS.items() if d.model.resolve() == here), None)


def demo_of_gallery(source: str | Path) -> str | None:
    """`demo:NAME` -> NAME; None for any other gallery source."""
    text = str(source)
    return (text.split(":", 1)[1] or DEFAULT_DEMO) if text.startswith("demo:") else None
