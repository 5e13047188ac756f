"""Gallery search: open a gallery (folder, manifest or the demo's), query it with text and/or the chosen
inputs of any modality, see ranked results with calibrated and raw scores, and cut off what is not relevant.

The controls write into a `SearchState`; a search sends a `SearchRequest` built from it (and, only when
asked, the selected inputs) to the controller. What the query is made of is always shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cl_core.actions import AUTO_FUSION, FUSIONS, SearchRequest, demo_for_model, export_hits, own_fusion
from cl_core.modality import Modality
from cl_core.session import Session
from cl_core.state import SearchState

from .jobs import Jobs
from .qt_audio import AudioPlayer
from .qt_composite import CompositePicker

if TYPE_CHECKING:
    from cl_core.search.query import Hit

COLUMNS = ["#", "Relevance", "Score", "Modality", "Sample", "Item"]
HIT_ROLE = Qt.ItemDataRole.UserRole  # which result a table cell belongs to
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # what a column sorts by (numbers as numbers)


class SortItem(QTableWidgetItem):
    """A cell that sorts by its key (rank, z and score numerically), not by the text shown."""

    def __init__(self, text: str, key: float | str) -> None:
        super().__init__(text)
        self.setData(SORT_ROLE, key)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if isinstance(a, int | float) and isinstance(b, int | float):
            return a < b
        return str(a) < str(b)
THUMB = 128
MODALITY_MARK = {"image": "▣", "text": "✎", "audio": "♪", "multichannel": "▦"}
RELEVANCE_TIP = ("Relevance: the probability that this result is relevant to the query, from a mapping the index "
                 "fitted on the gallery's own pairs for this kind of query and this kind of item (items sharing a "
                 "sample or a label count as relevant). One scale for every modality: results are ranked by it "
                 "when every modality is searched.")
SCORE_TIP = "Raw score: cosine with the (fused) query, or the fusion's own score"


def relevance_tip(h: Hit) -> str:
    """What a hit's two numbers mean, for its tooltip."""
    return (f"Relevance {h.relevance:.1%}: the chance that this {h.modality} item is relevant to the query, "
            f"{h.basis}.\nRaw score {h.score:+.4f} ({h.z:+.1f} standard deviations above this query's mean "
            f"score over the {h.modality} items).")


class SearchPanel(QWidget):
    def __init__(self, session: Session, jobs: Jobs, parent: QWidget | None = None,
                 state: SearchState | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        self.state = state or SearchState()
        self.open_folder = QPushButton("Open gallery folder…")
        self.open_manifest = QPushButton("Open manifest…")
        self.open_demo = QPushButton("Demo gallery")
        self.open_folder.setToolTip("A folder of images, sounds, texts or stacks (walked recursively)")
        self.open_manifest.setToolTip("A CSV/TSV/Parquet table with file and text columns; rows sharing an id "
                                      "are one sample")
        self.open_demo.setToolTip("The bundled demo's held-out gallery, for the demo model that is open")
        self.open_folder.clicked.connect(self.pick_folder)
        self.open_manifest.clicked.connect(self._pick_manifest)
        self.open_demo.clicked.connect(self._demo_gallery)
        self.summary = QLabel("No gallery: open a folder or a CSV/Parquet manifest.")
        self.summary.setWordWrap(True)
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search the gallery: type a sentence and press Enter")
        self.query.setToolTip("A text to search with (any modality can be found with it)")
        self.query.textChanged.connect(lambda text: setattr(self.state, "text", text))
        self.query.returnPressed.connect(self.run_search)
        self.use_selection = QCheckBox("+ selected inputs")
        self.use_selection.setToolTip("Add the inputs selected on the left to the query (fused with the text)")
        self.use_selection.toggled.connect(lambda on: setattr(self.state, "use_selection", on))
        self.search_button = QPushButton("Search")
        self.search_button.setToolTip("Search the gallery with the query (Enter in the box does the same)")
        self.search_button.clicked.connect(self.run_search)
        self.parts = QLabel("")
        self.parts.setObjectName("queryParts")
        self.parts.setWordWrap(True)
        self.target = QComboBox()
        self.target.setToolTip("Which modality to search; 'any' merges them by relevance")
        self.target.currentIndexChanged.connect(lambda _i: setattr(self.state, "target", self.target.currentData()))
        self.fusion = QComboBox()
        self.fusion.addItems([AUTO_FUSION, *FUSIONS])
        self.fusion.setToolTip("How several query items combine: weighted mean, Symile's multilinear inner "
                               "product, or GRAM volume (three or more modalities); auto: the model's own, the "
                               "fusion of the objective its config records (Symile, GRAM), else the mean")
        self.fusion.currentTextChanged.connect(lambda text: setattr(self.state, "fusion", text))
        self.k = QSpinBox()
        self.k.setRange(1, 1000)
        self.k.setToolTip("How many results to show")
        self.k.valueChanged.connect(lambda v: setattr(self.state, "k", v))
        self.only_relevant = QCheckBox("only relevance ≥")
        self.only_relevant.toggled.connect(lambda on: setattr(self.state, "threshold_on", on))
        self.min_relevance = QDoubleSpinBox()
        self.min_relevance.setRange(0.0, 1.0)
        self.min_relevance.setDecimals(2)
        self.min_relevance.setSingleStep(0.05)
        self.min_relevance.valueChanged.connect(lambda v: setattr(self.state, "min_relevance", v))
        for w in (self.only_relevant, self.min_relevance):
            w.setToolTip("Hide results less likely than this to be relevant, so a search can say 'nothing "
                         "relevant'; untick to see every result up to the count (`clens search --all`)")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for column, tip in ((1, RELEVANCE_TIP), (2, SCORE_TIP)):
            header = self.table.horizontalHeaderItem(column)
            if header is not None:
                header.setToolTip(tip)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # by rank until clicked
        self.table.horizontalHeader().setToolTip("Click a column's title to sort by it")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.ExtendedSelection)
        self.table.itemSelectionChanged.connect(self._selection_from_table)
        self._syncing = False
        self.table.setWordWrap(True)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel("")
        self.grid = QListWidget()
        self.grid.setViewMode(QListWidget.ViewMode.IconMode)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setGridSize(QSize(THUMB + 40, THUMB + 64))
        self.grid.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.grid.setMovement(QListWidget.Movement.Static)
        self.grid.setWordWrap(True)
        self.grid.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.grid.itemSelectionChanged.connect(self._selection_from_grid)
        self.views = QStackedWidget()
        self.views.addWidget(self.table)
        self.views.addWidget(self.grid)
        self.as_grid = QCheckBox("grid")
        self.as_grid.setToolTip("Show results as pictures (thumbnails, waveforms, stack composites) or as a list")
        self.as_grid.toggled.connect(lambda on: self.views.setCurrentIndex(1 if on else 0))
        self.as_grid.setChecked(True)  # pictures first: what a person searching images or sounds wants to see
        self.export = QPushButton("Export…")
        self.export.setToolTip("Save the results as CSV or JSON (file, sample, modality, raw and calibrated score)")
        self.export.clicked.connect(self._export_dialog)
        for view in (self.table, self.grid):
            view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            view.customContextMenuRequested.connect(lambda pos, v=view: self._context_menu(v, pos))
        self.table.doubleClicked.connect(lambda index: self._activate(self._hit_of(index.row())))
        self.grid.itemDoubleClicked.connect(lambda item: self._activate(self.grid.row(item)))
        self.thumbs: dict[str, Path] = {}
        self._cards: dict[str, list[int]] = {}  # a file's cards in the grid
        self.player = AudioPlayer(self)
        self.player.unavailable.connect(jobs.status.emit)
        jobs.thumbnails_ready.connect(self._thumbnails_ready)

        top = QHBoxLayout()
        for button in (self.open_folder, self.open_manifest, self.open_demo):
            top.addWidget(button)
        top.addStretch(1)
        query = QHBoxLayout()
        query.addWidget(self.query, 1)
        query.addWidget(self.use_selection)
        query.addWidget(self.search_button)
        options = QHBoxLayout()
        labelled: tuple[tuple[str, QWidget], ...] = (("in", self.target), ("fusion", self.fusion), ("top", self.k))
        for label, widget in labelled:
            options.addWidget(QLabel(label))
            options.addWidget(widget)
        options.addWidget(self.only_relevant)
        options.addWidget(self.min_relevance)
        options.addStretch(1)
        self.composite = CompositePicker(session, jobs)
        options.addWidget(self.composite)
        options.addWidget(self.as_grid)
        options.addWidget(self.export)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addLayout(query)
        layout.addWidget(self.parts)
        layout.addLayout(options)
        layout.addWidget(self.views, 1)
        layout.addWidget(self.empty)

        self._show_state()
        for name in ("text", "use_selection", "k", "fusion", "threshold_on", "min_relevance"):
            getattr(self.state.events, name).connect(lambda *_: self._show_state())
        session.model_changed.connect(self._model_changed)
        session.gallery_changed.connect(self._refresh_gallery)
        session.results_changed.connect(self._show_results)
        session.selection_changed.connect(lambda _s: self._show_parts())
        session.gallery_selection_changed.connect(self._selection_from_session)
        self._refresh_gallery()

    def _model_changed(self, _model: object) -> None:
        self._refresh_gallery()
        self._show_parts()  # "auto" fusion now means this model's own

    def _show_state(self) -> None:
        """The controls follow the state (a script or another view may change it)."""
        s = self.state
        if self.query.text() != s.text:
            self.query.setText(s.text)
        self.use_selection.setChecked(s.use_selection)
        self.k.setValue(s.k)
        self.fusion.setCurrentText(s.fusion)
        self.only_relevant.setChecked(s.threshold_on)
        self.min_relevance.setValue(s.min_relevance)
        self._show_parts()

    # ---- gallery ---------------------------------------------------------------------------------

    def _demo_name(self) -> str | None:
        model = self.session.model
        return None if model is None else demo_for_model(model.source)

    def pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a gallery folder")
        if folder:
            self.jobs.open_gallery(folder)

    def _pick_manifest(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a gallery manifest", "",
                                              "Manifests (*.csv *.tsv *.parquet);;All files (*)")
        if path:
            self.jobs.open_gallery(path)

    def _demo_gallery(self) -> None:
        name = self._demo_name()
        if name is not None:
            self.jobs.open_gallery(f"demo:{name}")

    def _refresh_gallery(self) -> None:
        has_model = self.session.model is not None
        for w in (self.open_folder, self.open_manifest):
            w.setEnabled(has_model)
        self.open_demo.setEnabled(self._demo_name() is not None)
        index, gallery = self.session.index, self.session.gallery
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItem("any modality", None)
        self.target.blockSignals(False)
        if index is None or gallery is None:
            self.summary.setText("No gallery: open a folder or a CSV/Parquet manifest." if has_model
                                 else "Open a model, then a gallery to search.")
            self.search_button.setEnabled(False)
            return
        for m in index.parts:
            self.target.addItem(m.value, m.value)
        if self.state.target is not None:
            self.target.setCurrentIndex(max(0, self.target.findData(self.state.target)))
        parts = "; ".join(
            f"{p.modality.value}: {p.end - p.start:,} ({p.built.kind}, agrees with exact search at "
            f"recall@10 {'n/a' if p.recall_at_10 is None else f'{p.recall_at_10:.3f}'})" for p in index.parts.values())
        bad = len(gallery.failures)
        self.summary.setText(f"<b>{gallery.gallery.name}</b>: {len(gallery.rows):,} items — {parts}"
                             + (f" — {bad} could not be used (see Messages)" if bad else ""))
        self.search_button.setEnabled(True)

    # ---- search ----------------------------------------------------------------------------------

    def _selected_rows(self) -> list[int]:
        return sorted(self.session.selection) if self.state.use_selection else []

    def _show_parts(self) -> None:
        parts = []
        if self.state.text.strip():
            parts.append(f"“{self.state.text.strip()}”")
        items = self.session.items
        parts += [f"{items[i].modality.value} {Path(items[i].label).name}" for i in self._selected_rows()]
        line = "Query: " + "  +  ".join(parts) if parts else "Query: (empty)"
        model = self.session.model
        if len(parts) >= 2 and self.state.fusion == AUTO_FUSION and model is not None:
            line += f"  ({own_fusion(model.objective, len(parts))[1]})"
        self.parts.setText(line)

    def request(self) -> SearchRequest:
        """The query as the controls describe it."""
        s = self.state
        rows = self._selected_rows()
        text = s.text.strip()
        return SearchRequest(
            texts=(text,) if text else (),
            vectors=self.session.vectors[rows] if rows else None,
            vector_sources=tuple(self.session.items[i].source for i in rows),
            vector_modalities=tuple(self.session.items[i].modality.value for i in rows),
            target=Modality(s.target) if s.target else None, k=s.k, fusion=s.fusion,
            min_relevance=self._threshold())

    def _threshold(self) -> float | None:
        return self.state.min_relevance if self.state.threshold_on else None

    def run_search(self) -> None:
        self.jobs.search(self.request())

    # ---- the grid, playing, more like this, export ------------------------------------------------

    def _fill_grid(self) -> None:
        self.grid.clear()
        self._cards = {}
        for r, h in enumerate(self.session.results):
            self._cards.setdefault(h.source, []).append(r)
            mark = MODALITY_MARK.get(h.modality, "•")
            body = h.text if h.text else Path(h.source).name
            if len(body) > 90:
                body = body[:89] + "…"
            item = QListWidgetItem(f"{h.rank}. {mark} {h.relevance:.0%} · {h.score:+.3f}\n{body}")
            item.setToolTip(f"{h.modality} · {h.sample_id}\n{h.text or h.source}\n\n{relevance_tip(h)}")
            thumb = self.thumbs.get(h.source)
            if thumb is not None:
                item.setIcon(QIcon(str(thumb)))
            self.grid.addItem(item)

    def _thumbnails_ready(self, found: dict[str, object]) -> None:
        """A batch of thumbnails: only the cards showing those files are touched (batches keep coming while a
        long list is drawn; going over every card each time made 1,000 results take minutes)."""
        new = {k: Path(str(v)) for k, v in found.items() if isinstance(v, Path)}
        self.thumbs.update(new)
        for source, thumb in new.items():
            for r in self._cards.get(source, ()):
                item = self.grid.item(r)
                if item is not None:
                    item.setIcon(QIcon(str(thumb)))

    def _selection_from_grid(self) -> None:
        if self._syncing:
            return
        hits = self.session.results
        self.session.select_gallery(hits[self.grid.row(i)].row for i in self.grid.selectedItems())

    def _selected_hits(self, view: QWidget) -> list[int]:
        if view is self.grid:
            return sorted(self.grid.row(i) for i in self.grid.selectedItems())
        return sorted(self._hit_of(i.row()) for i in self.table.selectionModel().selectedRows())

    def _hit_of(self, table_row: int) -> int:
        """The result a table row shows (the table may be sorted by any column)."""
        item = self.table.item(table_row, 0)
        return int(item.data(HIT_ROLE)) if item is not None else -1

    def _table_row_of(self, hit: int) -> int:
        return next((r for r in range(self.table.rowCount()) if self._hit_of(r) == hit), -1)

    def _context_menu(self, view: QWidget, pos: QPoint) -> None:
        chosen = [r for r in self._selected_hits(view) if r < len(self.session.results)]
        if not chosen:
            return
        hits = [self.session.results[r] for r in chosen]
        menu = QMenu(self)
        more = menu.addAction("More like this" if len(hits) == 1 else f"More like these {len(hits)} (fused)")
        more.triggered.connect(lambda: self.jobs.more_like([h.row for h in hits], self.state.k, self._threshold()))
        if len(hits) == 1:
            why = menu.addAction("Why did this match?")
            why.setToolTip("Where in the picture, when in the sound or which words carry the match")
            why.triggered.connect(lambda: self.jobs.explain_row(hits[0].row))
        files = [h for h in hits if not h.text]
        if files:
            folder = menu.addAction("Open the containing folder")
            folder.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(files[0].source).parent))))
        if any(h.modality == "audio" for h in hits):
            play = menu.addAction("Play / stop")
            play.triggered.connect(lambda: self.play(next(h.source for h in hits if h.modality == "audio")))
        menu.popup(view.mapToGlobal(pos))

    def _activate(self, r: int) -> None:
        """Double-click: a sound plays (or stops), anything else becomes the next query."""
        if 0 <= r < len(self.session.results):
            h = self.session.results[r]
            if h.modality == "audio":
                self.play(h.source)
            else:
                self.jobs.more_like([h.row], self.state.k, self._threshold())

    def play(self, path: str) -> None:
        """Play a sound, or stop the one playing (never blocks: QtMultimedia plays asynchronously)."""
        self.player.play(path)

    def export_to(self, path: str | Path) -> Path:
        query = self.session.query
        parts = list(query.texts) + list(query.vector_sources) if query is not None else []
        return export_hits(self.session.results, path, parts)

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the results", "results.csv",
                                              "CSV (*.csv);;JSON (*.json);;TSV (*.tsv)")
        if path:
            self.export_to(path)

    def _selection_from_table(self) -> None:
        if self._syncing:
            return
        hits = self.session.results
        self.session.select_gallery(hits[r].row for r in self._selected_hits(self.table) if 0 <= r < len(hits))

    def _selection_from_session(self, selection: frozenset[int]) -> None:
        """Results selected elsewhere (the map) are selected here too."""
        self._syncing = True
        for r, h in enumerate(self.session.results):
            item = self.grid.item(r)
            if item is not None:
                item.setSelected(h.row in selection)
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QTableWidget.SelectionMode.MultiSelection)
        for r, h in enumerate(self.session.results):
            if h.row in selection:
                self.table.selectRow(self._table_row_of(r))
        self.table.setSelectionMode(mode)
        self._syncing = False

    def _show_results(self) -> None:
        hits: list[Hit] = self.session.results
        query = self.session.query
        if query is not None and query.texts and not self.state.text:
            self.state.text = query.texts[0]  # a search started elsewhere (command line, a script)
        self._syncing = True
        self.table.setSortingEnabled(False)  # rows are filled in rank order, then sorted as the user chose
        self.table.setRowCount(len(hits))
        for r, h in enumerate(hits):
            what = h.text if h.text else Path(h.source).name
            cells: list[tuple[str, float | str]] = [(str(h.rank), h.rank), (f"{h.relevance:.0%}", h.logit),
                                                    (f"{h.score:+.4f}", h.score), (h.modality, h.modality),
                                                    (h.sample_id, h.sample_id), (what, what.lower())]
            for c, (text, key) in enumerate(cells):
                item = SortItem(text, key)
                item.setToolTip(relevance_tip(h) if c in (1, 2) else h.text or h.source)
                item.setData(HIT_ROLE, r)
                if c in (0, 1, 2):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        for c in range(len(COLUMNS) - 1):  # the last column stretches, and long texts wrap in it
            self.table.resizeColumnToContents(c)
        self.table.resizeRowsToContents()
        self._fill_grid()
        self._syncing = False
        self._selection_from_session(self.session.gallery_selection)
        if self.session.results_below_threshold:
            threshold = query.min_relevance if query is not None and query.min_relevance is not None else 0.0
            self.empty.setText(f"Nothing relevant: no result reaches {threshold:.0%}. The closest items are shown, "
                               "none likely relevant (untick 'only relevance' to list more).")
        else:
            self.empty.setText("" if hits or self.session.index is None or query is None else "Nothing relevant.")
