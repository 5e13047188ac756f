"""Light and dark themes: a Qt palette, the style sheet for the named widgets, and the plots' background
and ink (pyqtgraph draws its own canvas, so each plot is recoloured too). Chosen in View → Dark theme and
remembered with the layout."""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from cl_core.resources import RESOURCES


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    base: str
    alternate: str
    text: str
    button: str
    highlight: str
    muted: str  # placeholder and disabled text
    plot_background: str
    plot_ink: str
    style: str  # the style sheet under resources/styles


PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]  # categories (a map's colours, a plot's modalities), matplotlib's tab10

THEMES = {
    "light": Theme("light", "#f4f5f7", "#ffffff", "#f0f2f5", "#1f2937", "#e9ecf1", "#3b82f6", "#6b7280",
                   "w", "#333333", "lens.qss"),
    "dark": Theme("dark", "#1e2229", "#15181d", "#1b1f25", "#e5e7eb", "#2b313a", "#3b82f6", "#9aa3b2",
                  "#15181d", "#d1d5db", "lens-dark.qss"),
}


def palette(theme: Theme) -> QPalette:
    p = QPalette()
    role = QPalette.ColorRole
    for r, colour in ((role.Window, theme.window), (role.Base, theme.base), (role.AlternateBase, theme.alternate),
                      (role.Text, theme.text), (role.WindowText, theme.text), (role.ButtonText, theme.text),
                      (role.Button, theme.button), (role.ToolTipBase, theme.base), (role.ToolTipText, theme.text),
                      (role.Highlight, theme.highlight), (role.HighlightedText, "#ffffff"),
                      (role.PlaceholderText, theme.muted), (role.BrightText, "#ff6b6b")):
        p.setColor(r, QColor(colour))
    p.setColor(QPalette.ColorGroup.Disabled, role.Text, QColor(theme.muted))
    p.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, QColor(theme.muted))
    p.setColor(QPalette.ColorGroup.Disabled, role.WindowText, QColor(theme.muted))
    return p


def style_sheet(theme: Theme) -> str:
    """The shared sheet, then the theme's own rules (later rules win)."""
    sheets = ["lens.qss"] if theme.style == "lens.qss" else ["lens.qss", theme.style]
    return "\n".join((RESOURCES / "styles" / s).read_text(encoding="utf-8") for s in sheets
                     if (RESOURCES / "styles" / s).is_file())


def apply_theme(name: str, root: QWidget | None = None) -> Theme:
    """Apply theme `name` to the application and recolour every plot under `root`."""
    theme = THEMES.get(name, THEMES["light"])
    pg.setConfigOptions(background=theme.plot_background, foreground=theme.plot_ink)
    app = QApplication.instance()
    if isinstance(app, QApplication):
        app.setStyle("Fusion")  # the palette is honoured the same on every platform
        app.setPalette(palette(theme))
        app.setStyleSheet(style_sheet(theme))
    if root is not None:
        for view in root.findChildren(pg.GraphicsView):
            recolour_view(view, theme)
    return theme


def recolour_view(view: pg.GraphicsView, theme: Theme) -> None:
    """A plot canvas's background, and the axes and legends of every plot on it (colour bars included)."""
    view.setBackground(theme.plot_background)
    for item in view.scene().items():
        if isinstance(item, pg.AxisItem):
            item.setPen(pg.mkPen(theme.plot_ink))
            item.setTextPen(pg.mkPen(theme.plot_ink))
        elif isinstance(item, pg.LegendItem):
            item.setLabelTextColor(theme.plot_ink)
            item.setBrush(pg.mkBrush(QColor(theme.base)))
