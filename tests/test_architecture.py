"""Layering: cl_core never imports Qt, pyqtgraph or the GUI package (import-linter contract)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contract_holds():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    out = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout


def test_core_imports_without_qt():
    code = ("import sys, cl_core.cli, cl_core.models.open, cl_core.embed.items, cl_core.session, cl_core.models.hf;"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('PySide6','pyqtgraph','clens_app','shiboken6')];"
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
