"""The main window: dockable panels from a registry declared as data, a progress bar with Cancel,
a drop target for the whole window, and the dock layout saved and restored between runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QWidget,
)

from cl_core.actions import DEMOS, demo_available
from cl_core.session import Session
from cl_core.state import ProjectionState
from cl_core.task import Progress

from .jobs import Jobs
from .qt_compare_panel import ComparePanel
from .qt_diagnostics_panel import DiagnosticsPanel
from .qt_drop_panel import DropPanel
from .qt_evaluation_panel import EvaluationPanel
from .qt_explain_panel import ExplainPanel
from .qt_jobs_panel import JobsPanel
from .qt_markers_panel import MarkersPanel
from .qt_messages_panel import MessagesPanel
from .qt_model_panel import ModelPanel
from .qt_projection_panel import ProjectionPanel
from .qt_search_panel import SearchPanel
from .qt_similarity_panel import SimilarityPanel
from .qt_slide_panel import SlidePanel
from .qt_theme import apply_theme
from .qt_util import local_paths

Area = Qt.DockWidgetArea


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    build: Callable[[Session, Jobs], QWidget]
    area: Qt.DockWidgetArea


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("model", "Model", lambda s, j: ModelPanel(s, j), Area.LeftDockWidgetArea),
    PanelSpec("inputs", "Inputs", lambda s, j: DropPanel(s, j), Area.LeftDockWidgetArea),
    PanelSpec("similarity", "Similarity matrix", lambda s, j: SimilarityPanel(s), Area.RightDockWidgetArea),
    PanelSpec("search", "Gallery search", lambda s, j: SearchPanel(s, j), Area.RightDockWidgetArea),
    PanelSpec("projection", "Projection", lambda s, j: ProjectionPanel(s, j), Area.RightDockWidgetArea),
    PanelSpec("explain", "Why it matched", lambda s, j: ExplainPanel(s, j), Area.RightDockWidgetArea),
    PanelSpec("diagnostics", "Diagnostics", lambda s, j: DiagnosticsPanel(s, j), Area.RightDockWidgetArea),
    PanelSpec("evaluation", "Evaluation", lambda s, j: EvaluationPanel(s, j), Area.RightDockWidgetArea),
    PanelSpec("compare", "Compare", lambda s, j: ComparePanel(s, j), Area.RightDockWidgetArea),
    PanelSpec("markers", "Markers", lambda s, j: MarkersPanel(s, j), Area.RightDockWidgetArea),
    PanelSpec("slide", "Slide", lambda s, j: SlidePanel(s, j), Area.RightDockWidgetArea),
    PanelSpec("messages", "Messages", lambda s, j: MessagesPanel(s, j), Area.BottomDockWidgetArea),
    PanelSpec("jobs", "Jobs", lambda s, j: JobsPanel(s, j), Area.BottomDockWidgetArea),
)
LAYOUT_VERSION = 9  # bumped when panels are added, so an old saved layout is not applied


class MainWindow(QMainWindow):
    def __init__(self, session: Session | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        self.session = session or Session()
        self.jobs = Jobs(self.session, self)
        self.settings = settings or QSettings("ContrastiveLens", "ContrastiveLens")
        self._update_title()
        self.session.model_changed.connect(lambda _m: self._update_title())
        self.session.gallery_changed.connect(self._update_title)
        self.session.results_changed.connect(self._show_results)
        self.session.projection_changed.connect(self._show_projection)
        self.session.explanation_changed.connect(self._show_explanation)
        self.session.diagnosis_changed.connect(lambda: self._bring_forward("diagnostics", self.session.diagnosis))
        self.session.evaluation_changed.connect(lambda: self._bring_forward("evaluation", self.session.evaluation))
        self.session.comparison_changed.connect(self._show_comparison)
        self.session.markers_changed.connect(lambda: self._bring_forward("markers", self.session.markers))
        self.session.slide_changed.connect(lambda: self._bring_forward("slide", self.session.slide))
        self.session.counterfactual_changed.connect(
            lambda: self._bring_forward("markers", self.session.counterfactual))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.panels: dict[str, QWidget] = {}
        self.docks: dict[str, QDockWidget] = {}
        view_menu = self.menuBar().addMenu("&View")
        for spec in PANELS:
            widget = spec.build(self.session, self.jobs)
            dock = QDockWidget(spec.title, self)
            dock.setObjectName(f"dock_{spec.key}")
            dock.setWidget(widget)
            self.addDockWidget(spec.area, dock)
            view_menu.addAction(dock.toggleViewAction())
            self.panels[spec.key] = widget
            self.docks[spec.key] = dock
        self.splitDockWidget(self.docks["model"], self.docks["inputs"], Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.docks["similarity"], self.docks["search"])
        self.tabifyDockWidget(self.docks["search"], self.docks["projection"])
        self.tabifyDockWidget(self.docks["projection"], self.docks["explain"])
        self.tabifyDockWidget(self.docks["explain"], self.docks["diagnostics"])
        self.tabifyDockWidget(self.docks["diagnostics"], self.docks["evaluation"])
        self.tabifyDockWidget(self.docks["evaluation"], self.docks["compare"])
        self.tabifyDockWidget(self.docks["compare"], self.docks["markers"])
        self.tabifyDockWidget(self.docks["markers"], self.docks["slide"])
        self.tabifyDockWidget(self.docks["messages"], self.docks["jobs"])
        self.docks["messages"].raise_()
        self.docks["similarity"].raise_()
        messages = self.panels["messages"]
        assert isinstance(messages, MessagesPanel)
        messages.attention.connect(self._show_messages)
        self._build_status_bar()
        self._build_file_menu()
        self.resize(1280, 800)
        self._default_state = self.saveState(LAYOUT_VERSION)
        self._build_view_extras(view_menu)
        self.restore_layout()

    def projection_state(self) -> ProjectionState:
        """The map's settings (method, colour, pairs): `clens --colour` sets them before the map exists."""
        panel = self.panels["projection"]
        assert isinstance(panel, ProjectionPanel)
        return panel.state

    def _update_title(self) -> None:
        """The window says what is open: the model and the gallery."""
        parts = ["Contrastive Lens"]
        if self.session.model is not None:
            parts.append(self.session.model.name)
        if self.session.gallery is not None:
            parts.append(f"gallery {self.session.gallery.gallery.name} ({len(self.session.gallery.rows):,} items)")
        self.setWindowTitle(" — ".join(parts))

    def _show_results(self) -> None:
        """New search results are worth seeing: bring their dock to the front (unless the map shows them)."""
        if self.session.query is not None and self.session.projection is None:
            self.docks["search"].show()
            self.docks["search"].raise_()

    def _show_projection(self) -> None:
        if self.session.projection is not None:
            self.docks["projection"].show()
            self.docks["projection"].raise_()

    def _show_comparison(self) -> None:
        """A second model just opened (not each search it answers) brings its panel forward."""
        c = self.session.comparison
        if c is not None and c.results is None:
            self._bring_forward("compare", c)

    def _bring_forward(self, key: str, shown: object) -> None:
        """A panel whose figures just arrived comes to the front."""
        if shown is not None:
            self.docks[key].show()
            self.docks[key].raise_()

    def _show_explanation(self) -> None:
        if self.session.explanation is not None:
            self.docks["explain"].show()
            self.docks["explain"].raise_()

    def _show_messages(self) -> None:
        self.docks["messages"].show()
        self.docks["messages"].raise_()

    # ---- status bar: progress and cancel -------------------------------------------------------

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_label = QLabel("Open a model to begin.")
        self.progress = QProgressBar()
        self.progress.setMinimumWidth(320)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel the job shown here; what it finished is kept")
        self.cancel_button.clicked.connect(lambda: self.jobs.cancel())
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        self._set_busy(False)
        self.jobs.busy_changed.connect(self._set_busy)
        self.jobs.progress.connect(self._show_progress)
        self.jobs.status.connect(self.status_label.setText)
        self.jobs.error.connect(lambda msg: self.status_label.setText(msg.splitlines()[0]))

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)

    def _show_progress(self, p: Progress) -> None:
        if p.total > 0:
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)
            self.progress.setFormat(f"{p.text} %v/%m" if p.text else "%v/%m")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(p.text)

    def _build_file_menu(self) -> None:
        menu = self.menuBar().addMenu("&File")
        model_panel = self.panels["model"]
        assert isinstance(model_panel, ModelPanel)
        open_action = QAction("Open model folder…", self)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        open_action.triggered.connect(model_panel.open_folder)
        menu.addAction(open_action)
        for name in DEMOS:
            action = QAction(f"Open the {name.replace('_', ' & ')} demo", self)
            action.setEnabled(demo_available(name))
            action.triggered.connect(lambda _checked=False, n=name: self._open_demo(n))
            menu.addAction(action)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        menu.addAction(quit_action)
        self.menuBar().insertMenu(self.menuBar().actions()[0], menu)

    def _build_view_extras(self, menu: Any) -> None:
        """Reset layout, large text for projectors, and keyboard shortcuts for the main actions."""
        menu.addSeparator()
        reset = QAction("Reset layout", self)
        reset.setToolTip("Put every panel back where it starts")
        reset.triggered.connect(self.reset_layout)
        menu.addAction(reset)
        self.large_text = QAction("Large text", self)
        self.large_text.setCheckable(True)
        self.large_text.setShortcut(QKeySequence("Ctrl+Shift+="))
        self.large_text.setToolTip("Bigger text everywhere, for demos on a projector")
        self.large_text.toggled.connect(self.set_large_text)
        menu.addAction(self.large_text)
        self.dark_theme = QAction("Dark theme", self)
        self.dark_theme.setCheckable(True)
        self.dark_theme.setToolTip("Light text on dark panels and plots; remembered for the next start")
        self.dark_theme.toggled.connect(lambda on: self.set_theme("dark" if on else "light"))
        menu.addAction(self.dark_theme)
        search, projection = self.panels["search"], self.panels["projection"]
        assert isinstance(search, SearchPanel) and isinstance(projection, ProjectionPanel)
        shortcuts = (("Ctrl+L", "Focus the search box", self.focus_search),
                     ("Ctrl+Shift+O", "Open a gallery folder", search.pick_folder),
                     ("Ctrl+E", "Export the map", projection.export_dialog))
        for keys, text, slot in shortcuts:
            action = QAction(text, self)
            action.setShortcut(QKeySequence(keys))
            action.triggered.connect(slot)
            menu.addAction(action)

    def focus_search(self) -> None:
        search = self.panels["search"]
        assert isinstance(search, SearchPanel)
        self.docks["search"].show()
        self.docks["search"].raise_()
        search.query.setFocus()

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()
        self.docks["similarity"].raise_()
        self.docks["messages"].raise_()
        self.default_sizes()

    def set_large_text(self, on: bool) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            font = app.font()
            if not hasattr(self, "_base_point_size"):
                self._base_point_size = font.pointSizeF()
            font.setPointSizeF(self._base_point_size * (1.5 if on else 1.0))
            app.setFont(font)

    def saved_theme(self) -> str:
        return str(self.settings.value("view/theme", "light"))

    def set_theme(self, name: str) -> None:
        """Colours for the whole window and its plots; remembered in the settings."""
        self.theme = apply_theme(name, self)
        self.dark_theme.blockSignals(True)
        self.dark_theme.setChecked(self.theme.name == "dark")
        self.dark_theme.blockSignals(False)
        self.settings.setValue("view/theme", self.theme.name)

    def _open_demo(self, name: str) -> None:
        self.session.clear_items()
        self.jobs.open_demo(name)

    # ---- drops anywhere on the window ----------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self.route_paths(local_paths(event.mimeData()))
        event.acceptProposedAction()

    def route_paths(self, paths: list[str], explicit_model: bool = False) -> None:
        """A checkpoint opens as the model; everything else is embedded."""
        self.jobs.open_paths(paths, explicit_model=explicit_model)

    # ---- layout and shutdown --------------------------------------------------------------------

    def restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is None or not self.restoreState(state, LAYOUT_VERSION):
            QTimer.singleShot(0, self.default_sizes)

    def default_sizes(self) -> None:
        """First-run proportions (applied once the window has its size; a saved layout wins)."""
        self.resizeDocks([self.docks["model"], self.docks["similarity"]], [400, 880], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["model"], self.docks["inputs"]], [300, 330], Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["similarity"], self.docks["messages"]], [620, 140], Qt.Orientation.Vertical)

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.save_layout()
        self.jobs.shutdown()
        super().closeEvent(event)
