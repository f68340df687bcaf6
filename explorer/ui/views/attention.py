"""Attention: the selected head large, the layer's heads as a grid of small heatmaps, and
a layers x heads overview of one score, named with where it was measured: on this prompt,
or (induction and duplicate token, once per model) on the seeded repeated sequence; a line
under it gives the selected head's scores on both. Heads can be switched off from the
grid's check boxes or by Ctrl+clicking them in the grid or the overview. A click on a
repeated-sequence score opens that head on the repeated sequence."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QWidget

from explorer.ui.dialogs.repeated_sequence import RepeatedSequenceDialog
from explorer.ui.views.base import StageView
from explorer.ui.widgets.flow import FlowLayout
from explorer.ui.widgets.head_grid import HeadGrid
from explorer.ui.widgets.heatmap import Heatmap
from explorer.ui.widgets.layout import VERTICAL, WrappingPanel, adaptive_splitter, splitter, stack
from explorer.ui.widgets.zoom_bar import ZoomBar
from gpt_core.analysis import HEAD_METRICS, HEAD_TYPES, PROMPT_HEAD_SCORES, repeat_pairs
from gpt_core.probe.sections import Section

OVERVIEW_METRICS = {**HEAD_METRICS, **PROMPT_HEAD_SCORES, **HEAD_TYPES}
ON_THE_PROBE = "seeded repeated sequence"
HEAD_MIN_PX = 260  # the selected head's heatmap: smaller and a 13-token prompt is a blur
LOG_FROM_TOKENS = 128  # a prompt this long opens on log colours (until the person picks)
SIDE_BY_SIDE_FROM = 760  # narrower: the head above the grid and overview, scrolled


class AttentionView(StageView):
    name = "attention"

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.heatmap = Heatmap()
        self.heatmap.setMinimumSize(HEAD_MIN_PX, HEAD_MIN_PX)
        self.zoom = ZoomBar(self.heatmap)
        self.grid = HeadGrid()
        self.grid_title = QLabel()
        self.grid_title.setWordWrap(True)
        self.head_boxes: list[QCheckBox] = []
        self.head_box_panel = QWidget()  # the boxes wrap into rows: 25 heads fit a narrow side
        self.head_box_row = FlowLayout(self.head_box_panel, spacing=2)
        self.metric = QComboBox()
        for name in OVERVIEW_METRICS:
            self.metric.addItem(f"{short_name(name)} ({where_measured(name)})", name)
        self.metric.setToolTip("\n".join(OVERVIEW_METRICS.values()))
        self.head_scores = QLabel()  # the selected head's scores, and where each was measured
        self.head_scores.setWordWrap(True)
        self.head_scores.setStyleSheet("color:#495057;")
        self.overview = Heatmap()
        self.overview.setMinimumHeight(160)
        self._off_marks = pg.ScatterPlotItem(
            symbol="x", size=11, pen=pg.mkPen("#c92a2a", width=2), brush=None
        )
        self.overview.plot.addItem(self._off_marks)
        self._hovered_overview: tuple[int, int] | None = None
        self._layer = 0
        self.repeated_sequence_dialog: RepeatedSequenceDialog | None = None  # made when asked
        self._lay_out()
        self._wire()

    def _lay_out(self) -> None:
        heads_on = QLabel("Heads on (untick to switch off; Ctrl+click works too):")
        heads_on.setWordWrap(True)
        heads_on.setStyleSheet("color:#495057;")
        grid_panel = stack(
            self.grid_title, self.grid, heads_on, (self.head_box_panel, 0), owner=WrappingPanel()
        )
        metric_row = QHBoxLayout()
        metric_row.addWidget(QLabel("All layers × heads:"))
        metric_row.addWidget(self.metric, 1)
        overview = stack(metric_row, self.head_scores, self.overview)
        overview.layout().addStretch(0)  # the lines stay on top while the map is hidden
        side = splitter(VERTICAL, grid_panel, overview, stretch=(3, 2))
        head = stack((self.zoom, 0), self.heatmap, spacing=2)
        self.split = adaptive_splitter(SIDE_BY_SIDE_FROM, head, side, stretch=(3, 2))
        stack(self.split, owner=self)

    def _wire(self) -> None:
        session = self.session
        self.heatmap.clicked.connect(session.select_pair)  # the step view explains that pair
        self.heatmap.add_menu_action(
            "Export this head (PNG, SVG, CSV, NPY)…", lambda: self.exportRequested.emit("head")
        )
        self.heatmap.add_menu_action(
            "Export the layer's grid of heads…", lambda: self.exportRequested.emit("layer")
        )
        self.grid.headClicked.connect(session.select_head)
        self.grid.headToggled.connect(lambda head: session.toggle_head(self._layer, head))
        export_grid = pg.QtGui.QAction("Export the layer's grid of heads…", self.grid)
        export_grid.triggered.connect(lambda: self.exportRequested.emit("layer"))
        self.grid.addAction(export_grid)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.metric.currentIndexChanged.connect(lambda _: self._draw_overview())
        self.zoom.scaleChanged.connect(self._scale_changed)
        self.grid.set_colour_scale(self.zoom.chosen)
        self.overview.clicked.connect(self._overview_clicked)
        self.overview.ctrlClicked.connect(session.toggle_head)
        self.overview.hovered.connect(lambda r, c: setattr(self, "_hovered_overview", (r, c)))
        self.overview.add_menu_action(
            "Switch the head under the pointer off / on", self._toggle_hovered_overview
        )
        self.overview.add_menu_action(
            "Show the head under the pointer on the repeated sequence",
            self._show_hovered_on_repeated_sequence,
        )
        session.repeated_sequence.ready.connect(self._show_repeated_sequence)

    # --- drawing ---
    def draw(self, section: Section) -> None:
        trace = self.trace
        self._layer = section.layer
        self.grid_title.setText(
            f"Layer {section.layer}: all {trace.config.n_heads} heads (click one to open it)"
        )
        # Past LOG_FROM_TOKENS most weights are near 1/T: dark on a linear scale.
        self.zoom.suggest("log" if trace.n_tokens >= LOG_FROM_TOKENS else "auto")
        self.grid.set_layer(trace[section.key("weights")])
        self.show_head()
        self.show_switches()

    def show_head(self) -> None:
        """The selected head large, and its frame in the grid."""
        trace, head, layer = self.trace, self.session.selection.head, self._layer
        off = set(self.session.interventions.heads_in(layer))
        labels = self.labels()
        state = " (switched off)" if head in off else ""
        self.heatmap.set_matrix(
            trace.head_weights(layer, head),
            labels,
            labels,
            signed=False,
            title=f"Layer {layer} · head {head}{state}{self._scale_note()}",
            hover=lambda r, c, v: (
                f"query {r} “{trace.token_strings[r]}” → key {c} "
                f"“{trace.token_strings[c]}”: weight {v:.6f}"
            ),
        )
        self.show_position()
        self.grid.mark_heads(head, off)
        self._say_head_scores()

    def show_position(self) -> None:
        self.heatmap.set_highlight_row(self.session.position)

    def _scale_note(self) -> str:
        return " · log₁₀ colours" if self.zoom.chosen == "log" else ""

    def _scale_changed(self, scale: str) -> None:
        self.grid.set_colour_scale(scale)
        if self.trace is not None:
            self.show_head()

    def show_switches(self) -> None:
        """Check boxes, grid frames and overview marks follow the switches at once; the
        weights change when the new run arrives."""
        off = set(self.session.interventions.heads_in(self._layer))
        self._sync_head_boxes(self.trace.config.n_heads, off)
        self.grid.mark_heads(self.session.selection.head, off)
        self._draw_overview()

    def _draw_overview(self) -> None:
        result = self.session.result
        if result is None:
            return
        name = self.metric.currentData()
        head_types = self.session.state.model.head_types
        if name in HEAD_TYPES and name not in head_types:
            shape = result.head_stats["entropy"].shape
            title = "Not measured: the weights are not finite"
            self.overview.set_matrix(np.full(shape, np.nan), signed=False, title=title)
            return
        # per prompt, or per model on the repeated sequence
        values = head_types[name] if name in HEAD_TYPES else result.head_stats[name]  # [L, H]
        unmeasured = bool(np.isnan(values).all())  # the prompt repeats no token
        self.overview.setVisible(not unmeasured)
        self._say_head_scores()
        if unmeasured:
            return
        n_layers, n_heads = values.shape
        self.overview.set_matrix(
            values,
            [f"L{i}" for i in range(n_layers)],
            [f"H{h}" for h in range(n_heads)],
            signed=False,
            title=self._overview_title(name),
            hover=lambda r, c, v: f"layer {r} · head {c}: {v:.4f} (Ctrl+click switches it off/on)",
        )
        self.overview.set_highlight_row(self._layer)
        off = sorted(self.session.interventions.ablate_heads)
        self._off_marks.setData([h + 0.5 for _, h in off], [layer + 0.5 for layer, _ in off])

    def _overview_title(self, name: str) -> str:
        if name not in HEAD_TYPES:
            return f"{short_name(name)} on this prompt"
        return (
            f"{short_name(name)} on the {ON_THE_PROBE}, not this prompt (click a head to see "
            "it there)"
        )

    def _say_head_scores(self) -> None:
        """The selected head's scores on this prompt and on the repeated sequence (or why a
        score is missing)."""
        result, model = self.session.result, self.session.state.model
        if result is None or "prompt_induction" not in result.head_stats:
            self.head_scores.setText("")
            return
        at = (self._layer, self.session.selection.head)
        stats = result.head_stats
        ids = result.trace.token_ids
        repeated = len(np.unique(repeat_pairs(ids).duplicate[0]))
        text = f"Head {at[0]}.{at[1]} — this prompt: previous token {stats['previous'][at]:.3f}"
        if repeated:
            text += (
                f", induction {stats['prompt_induction'][at]:.3f}, duplicate token "
                f"{stats['prompt_duplicate_token'][at]:.3f} ({repeated} of {len(ids)} "
                "positions repeat a token)"
            )
        else:
            text += "; it repeats no token, so no induction or duplicate-token score"
        if all(name in model.head_types for name in HEAD_TYPES):
            text += (
                f" · {ON_THE_PROBE}: induction {model.head_types['induction'][at]:.3f}, "
                f"duplicate token {model.head_types['duplicate_token'][at]:.3f}"
            )
        self.head_scores.setText(text)

    def _sync_head_boxes(self, n_heads: int, off: set[int]) -> None:
        if len(self.head_boxes) != n_heads:
            for box in self.head_boxes:
                box.deleteLater()
            self.head_boxes = []
            for h in range(n_heads):
                box = QCheckBox(str(h))
                box.toggled.connect(lambda checked, h=h: self._head_box_toggled(h, checked))
                self.head_boxes.append(box)
                self.head_box_row.addWidget(box)
        for h, box in enumerate(self.head_boxes):
            box.blockSignals(True)
            box.setChecked(h not in off)
            box.blockSignals(False)

    # --- switching heads ---
    def _head_box_toggled(self, head: int, checked: bool) -> None:
        off = head in self.session.interventions.heads_in(self._layer)
        if checked == off:  # the box disagrees with the session: toggle it
            self.session.toggle_head(self._layer, head)

    def _overview_clicked(self, row: int, col: int) -> None:
        if self.metric.currentData() in HEAD_TYPES:  # measured on the repeated sequence
            self.session.repeated_sequence.show_head(row, col)
            return
        self.session.select_head(col)
        self.session.select_layer(row)

    def _show_repeated_sequence(self, head) -> None:
        if self.repeated_sequence_dialog is None:
            self.repeated_sequence_dialog = RepeatedSequenceDialog(self)
        self.repeated_sequence_dialog.show_head(head)

    def _show_hovered_on_repeated_sequence(self) -> None:
        if self._hovered_overview is not None:
            self.session.repeated_sequence.show_head(*self._hovered_overview)

    def _toggle_hovered_overview(self) -> None:
        if self._hovered_overview is not None:
            self.session.toggle_head(*self._hovered_overview)


def short_name(name: str) -> str:
    """A score's name without its details: "Induction", "Previous token"."""
    return OVERVIEW_METRICS[name].split(":")[0].removesuffix(" on this prompt")


def where_measured(name: str) -> str:
    return ON_THE_PROBE if name in HEAD_TYPES else "this prompt"
