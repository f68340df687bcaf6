"""The Patching tab: set up a clean/corrupted pair, run the sweeps off the GUI thread
(their rows stream in; Cancel stops them) and read where the prediction comes from:
heatmaps of the normalised effect (0 = corrupted, 1 = clean) per sweep, the attribution
estimate beside the exact result with their correlation, path patching and the direct
logit attribution. A click on a cell opens that block, head and position in the Stage
view for the clean prompt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QTableWidgetItem,
    QTabWidget,
    QWidget,
)

from explorer.export.patching import export_patching, sweep_table
from explorer.state.app_state import PatchRun, find_section
from explorer.ui.panels.patch_setup import PatchSetup
from explorer.ui.widgets.axes import fixed_plot, style_axes
from explorer.ui.widgets.heatmap import Heatmap
from explorer.ui.widgets.layout import adaptive_splitter, scrolled, stack
from explorer.ui.widgets.tables import NumberItem, caption, read_only_table
from gpt_core import ExportError
from gpt_core.analysis.patching import PATH_SWEEP, SWEEPS, Sweep
from gpt_core.analysis.patching.sweeps import LAYER_HEAD_POSITION

TOP_PARTS = 12  # bars in the direct logit attribution chart (the table has every part)
MIN_TABLE_PX = 240  # the table: a part's name and its contribution side by side


SIDE_BY_SIDE_FROM = 820  # px: the exact map and its estimate side by side


class SweepPanel(QWidget):
    """One sweep: the exact result, and beside it the attribution estimate if there is one."""

    cellClicked = Signal(object, int, int)  # the Sweep, row, column

    def __init__(self, name: str, sweep: Sweep, parent=None):
        super().__init__(parent)
        self.name = name  # the tab's name
        self.sweep = sweep  # the sweep whose layout the arrays have
        self.exact, self.estimate = Heatmap(), Heatmap()
        self.note = caption()
        # side by side where both fit at their least readable size, else one above the other
        maps = adaptive_splitter(SIDE_BY_SIDE_FROM, self.exact, self.estimate)
        stack(maps, self.note, owner=self)
        self.exact.clicked.connect(lambda r, c: self.cellClicked.emit(self.sweep, r, c))
        self.estimate.clicked.connect(lambda r, c: self.cellClicked.emit(self.sweep, r, c))

    def show_values(
        self, clean_ids, run: PatchRun | None, values: np.ndarray, estimate=None
    ) -> None:
        """Raw values while running (run None), the normalised effect when done."""
        result = run.result if run else None
        matrix, rows, cols, row_axis, col_axis = sweep_table(clean_ids, self.sweep, values)
        self._draw(self.exact, run, matrix, rows, cols, "exact" if estimate is not None else "")
        self.estimate.setVisible(estimate is not None)
        if result is not None and col_axis == "position":  # where the prompts differ
            differ = np.flatnonzero(result.clean_ids != result.corrupted_ids).tolist()
            for heatmap in (self.exact, self.estimate):
                heatmap.keep_labels(columns=differ)
        if estimate is not None:
            estimated = sweep_table(clean_ids, self.sweep, estimate)[0]
            self._draw(self.estimate, run, estimated, rows, cols, "attribution estimate")
            finite = np.isfinite(matrix) & np.isfinite(estimated)
            pair = (matrix[finite], estimated[finite])
            varies = finite.sum() > 2 and min(np.std(pair[0]), np.std(pair[1])) > 0
            r = np.corrcoef(*pair)[0, 1] if varies else np.nan  # a constant map: no correlation
            self.note.setText(f"Correlation of the estimate with the exact result: {r:.3f}")
        elif result is None:
            self.note.setText("Raw metric values as the blocks arrive…")
        else:
            self.note.setText(f"{row_axis} × {col_axis}; {self.sweep.patches}")

    def _draw(self, heatmap: Heatmap, run, matrix, rows, cols, label: str) -> None:
        result = run.result if run else None
        shown = matrix if result is None or result.same_metric else result.normalised(matrix)
        what = "raw metric" if result is None or result.same_metric else "0 = corrupted, 1 = clean"
        title = f"{self.name}{' · ' + label if label else ''} · {what}"

        def hover(r: int, c: int, v: float) -> str:
            raw = matrix[r, c]
            if not np.isfinite(raw):
                return f"{rows[r]} × {cols[c]}: not run"
            tail = f", normalised {shown[r, c]:.4f}" if shown is not matrix else ""
            return f"{rows[r]} × {cols[c]}: metric {raw:.6g}{tail} (click to open)"

        heatmap.set_matrix(
            shown, rows, cols, title=title, signed=True, hover=hover, missing="not run or no path"
        )


class LogitAttributionPanel(QWidget):
    """The clean run's direct logit attribution: the largest parts as bars, all in a table."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="w")
        fixed_plot(self.plot.getPlotItem())
        style_axes(self.plot.getPlotItem(), bottom="direct contribution to the logit difference")
        self.plot.invertY(True)
        self.bars = pg.BarGraphItem(x0=0, y=[], height=0.7, width=[])
        self.plot.addItem(self.bars)
        self.table = read_only_table(["part", "contribution"])
        self.table.setSortingEnabled(True)
        header = self.table.horizontalHeader()
        # The numbers keep their width; the names take what is left, elided (full in a
        # tooltip), so the contribution is always in view.
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.horizontalHeaderItem(1).setToolTip("sorts by size: |contribution|")
        self.table.verticalHeader().hide()  # row numbers say nothing here
        self.table.setMinimumWidth(MIN_TABLE_PX)
        self.total = caption()
        parts = adaptive_splitter(SIDE_BY_SIDE_FROM, self.plot, self.table, stretch=(3, 2))
        stack(parts, self.total, owner=self)

    def show_parts(self, parts: dict[str, float]) -> None:
        names = sorted(parts, key=lambda n: -abs(parts[n]))[:TOP_PARTS]
        values = np.array([parts[n] for n in names])
        colours = ["#2f9e44" if v >= 0 else "#c92a2a" for v in values]
        self.bars.setOpts(
            x0=np.minimum(values, 0),
            y=np.arange(len(names)),
            width=np.abs(values),
            brushes=colours,
            pen=None,
        )
        self.plot.getAxis("left").setTicks([list(enumerate(names))])
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(parts))
        for row, (name, value) in enumerate(parts.items()):
            item = QTableWidgetItem(name)
            item.setToolTip(name)
            self.table.setItem(row, 0, item)
            self.table.setItem(row, 1, NumberItem(abs(value), f"{value:+.5f}"))
        self.table.setSortingEnabled(True)
        self.table.sortItems(1, Qt.SortOrder.DescendingOrder)  # the largest parts first
        self.total.setText(
            f"The {len(parts)} parts sum to {sum(parts.values()):.5f}: exactly the clean run's "
            "logit[answer] − logit[distractor] (logit[answer] without a distractor), with the "
            "final norm's scale held at its own value."
        )


class PatchingView(QWidget):
    """The centre's Patching tab."""

    openInStage = Signal()  # a cell was clicked: the window shows the Stage tab
    job_kind = "patch"  # the job its run_button starts (a key of JOB_KINDS)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.setup = PatchSetup(session)
        self.run_button = self.setup.run_button
        self.cancel_button = QPushButton("Cancel")
        self.export_button = QPushButton("Export…")
        self.progress = QProgressBar()
        self.summary = caption(rich=True)
        self.open_in = QComboBox()
        self.open_in.addItem("click opens the clean run", "clean")
        self.open_in.addItem("click opens the corrupted run", "corrupted")
        self.results = QTabWidget()
        self.panels: dict[str, SweepPanel] = {}
        self.logit_parts = LogitAttributionPanel()
        self._pending_open: tuple | None = None  # (section, head, position, ids) to open
        bar = QHBoxLayout()
        for widget in (
            self.summary,
            self.progress,
            self.cancel_button,
            self.open_in,
            self.export_button,
        ):
            bar.addWidget(widget, 1 if widget is self.summary else 0)
        results = stack(bar, self.results)
        # The set-up keeps its whole height (Run patching in sight), the maps the rest, and
        # where that is less than their least readable size the tab scrolls as one page:
        # neither is crushed to a strip.
        stack(scrolled(stack((self.setup, 0), (results, 1))), owner=self)
        self._wire()
        self.show_run()

    def _wire(self) -> None:
        session, jobs = self.session, self.session.patching
        self.cancel_button.clicked.connect(lambda: session.cancel("patch"))
        self.setup.run_button.clicked.connect(self._clear_results)
        self.export_button.clicked.connect(self.export)
        jobs.progress.connect(self._progress)
        jobs.partial.connect(self._partial)
        session.patchingChanged.connect(self.show_run)
        session.traceChanged.connect(self._apply_pending_open)
        session.busyChanged.connect(lambda *_: self._busy(session.runner.has_job("patch")))
        self._busy(False)

    def _busy(self, running: bool) -> None:
        self.cancel_button.setVisible(running)
        self.progress.setVisible(running)
        self.setup.run_button.setEnabled(not running)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _panel(self, name: str, sweep: Sweep | None = None) -> SweepPanel:
        if name not in self.panels:
            panel = SweepPanel(name, sweep or SWEEPS[name])
            panel.cellClicked.connect(self.open_cell)
            self.panels[name] = panel
            self.results.addTab(panel, name)
        return self.panels[name]

    def _partial(self, name: str, values: np.ndarray) -> None:
        clean_ids = self.session.tokenizer.encode(self.session.state.patching.clean_text)
        self._panel(name).show_values(clean_ids, None, values)

    def _clear_results(self) -> None:
        self.results.clear()
        for panel in self.panels.values():
            panel.deleteLater()
        self.panels.clear()

    def show_run(self) -> None:
        run = self.session.state.patch_run
        self._clear_results()  # nothing of other settings or another model stays
        if run is None:
            self.summary.setText("Set up two prompts of the same length and press Run patching.")
            return
        result = run.result
        for name, values in result.exact.items():
            estimate = result.estimate(name) if name in result.attribution else None
            self._panel(name).show_values(result.clean_ids, run, values, estimate)
        for name in result.attribution:
            if name not in result.exact and name != "path":
                panel = self._panel(f"{name} (attribution)", SWEEPS[name])
                panel.show_values(result.clean_ids, run, result.estimate(name))
        if result.path is not None:
            estimate = result.estimate("path") if "path" in result.attribution else None
            panel = self._panel("path", PATH_SWEEP)
            panel.show_values(result.clean_ids, run, result.path, estimate)
        self.logit_parts.show_parts(dict(result.logit_attribution))
        self.results.addTab(self.logit_parts, "direct logit attribution")
        self.summary.setText(_summary(run, self.session.tokenizer))

    def open_cell(self, sweep: Sweep, row: int, col: int) -> None:
        """Open the cell's block (and head, and position) in the Stage view, clean run."""
        run = self.session.state.patch_run
        if run is None:
            return
        if sweep.layout == LAYER_HEAD_POSITION:  # drawn one row per head
            (layer, head), position = divmod(row, self.session.config.n_heads), col
        else:
            cell = dict(zip(sweep.layout, (row, col), strict=True))
            layer, head, position = cell["layer"], cell.get("head"), cell.get("position")
        section = find_section(self.session.state, sweep.section, layer)
        ids, text = self._opened_prompt(run)
        self._pending_open = (section, head, position, ids)
        trace = self.session.trace
        if trace is None or trace.token_ids.tolist() != ids:
            self.session.set_prompt(text)
            self.session.run()
        else:
            self._apply_pending_open()
        self.openInStage.emit()

    def _opened_prompt(self, run: PatchRun) -> tuple[list[int], str]:
        """The ids and text of the run a click opens: the clean or the corrupted one."""
        if self.open_in.currentData() == "corrupted":
            return run.result.corrupted_ids.tolist(), run.settings.corrupted_text
        return run.result.clean_ids.tolist(), run.settings.clean_text

    def _apply_pending_open(self) -> None:
        trace = self.session.trace
        if self._pending_open is None or trace is None:
            return
        section, head, position, ids = self._pending_open
        if trace.token_ids.tolist() != ids:
            return
        self._pending_open = None
        self.session.select_section(section)
        if head is not None:
            self.session.select_head(head)
        if position is not None:
            self.session.select_position(position)

    def export(self, folder: str | None = None) -> list[Path]:
        run = self.session.state.patch_run
        if run is None:
            return []
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export the patching results")
            if not folder:
                return []
        try:
            written = export_patching(run.result, folder)
        except (ExportError, OSError) as exc:
            self.session.report("error", f"Export failed: {exc}. Nothing was written.")
            return []
        self.session.report("status", f"Exported {len(written)} files to {folder}")
        return written


def _summary(run: PatchRun, tokenizer) -> str:
    result, metric = run.result, run.result.metric
    tokens = f"answer “{tokenizer.display(metric.answer)}”"
    if metric.distractor is not None:
        tokens += f", distractor “{tokenizer.display(metric.distractor)}”"
    text = (
        f"{metric.describe()}: {tokens} · clean <b>{result.clean_value:.4f}</b>, corrupted "
        f"<b>{result.corrupted_value:.4f}</b> · {result.direction} · {run.seconds:.1f} s"
    )
    if result.same_metric:
        text += (
            " · <b style='color:#c92a2a'>clean and corrupted give the same metric</b>: "
            "the maps show raw values, not a fraction of the difference"
        )
    return text
