"""The residual stream after a "+ residual" section (a block's middle, after attention, or its
output, after the feed-forward): the stream as a tokens x dims heatmap, every token's L2
norm at every depth as a depth x tokens heatmap with this stage's row marked, and the
selected token's norm along depth.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox

from explorer.state.app_state import depth_row
from explorer.ui.views.base import StageView
from explorer.ui.widgets.heatmap import Heatmap, TokensByDims
from explorer.ui.widgets.layout import VERTICAL, adaptive_splitter, splitter, stack
from explorer.ui.widgets.plots import MARKER_PEN, LabelledPlot
from gpt_core import Trace
from gpt_core.probe.sections import Section
from gpt_core.probe.stages import residual_stream


def depth_norms(trace: Trace) -> np.ndarray:
    """L2 norm of every token's residual vector at every depth: [2L + 1, T]."""
    keys = [key for key, _ in residual_stream(trace.config.n_layers)]
    return np.stack([np.linalg.norm(trace[key], axis=-1) for key in keys])  # [2L+1, T]


def _place(trace: Trace, section: Section) -> str:
    """ "block 2 · Residual after attention": where along the stream a section reads."""
    stage = trace.stage(section.shape_key)
    return stage.title if stage.layer is None else f"block {stage.layer} · {stage.title}"


class ResidualView(StageView):
    name = "residual"

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.heatmap = TokensByDims()
        self.heatmap.setMinimumSize(300, 260)
        self.depth = Heatmap()
        self.depth.setMinimumHeight(200)
        self._position_line = pg.InfiniteLine(angle=90, pen=MARKER_PEN)
        self.depth.plot.addItem(self._position_line)
        self._hovered_row: int | None = None
        self.log_colours = QCheckBox("log colour scale (when a few tokens dwarf the rest)")
        self.along = LabelledPlot(
            "", "depth (click a point to open that stage)", "‖x‖₂", tick_every=2
        )
        self.along.add_curve("token", "selected token", "#1c7ed6")
        self.along.add_curve("mean", "mean over tokens", "#868e96", Qt.PenStyle.DashLine)
        self.norms = np.zeros((0, 0), dtype=np.float32)  # [2L+1, T]
        self._norms_of: Trace | None = None
        self._lay_out()
        self.heatmap.clicked.connect(lambda row, col: self.session.select_position(row))
        self.depth.clicked.connect(lambda row, col: self.session.select_position(col))
        self.depth.hovered.connect(lambda row, col: setattr(self, "_hovered_row", row))
        self.depth.add_menu_action("Open the stage under the pointer", self._open_hovered_stage)
        self.log_colours.toggled.connect(self.redraw)
        self.along.placeClicked.connect(self._open_row)

    def _lay_out(self) -> None:
        depth_panel = stack(self.depth, (self.log_colours, 0))
        side = splitter(VERTICAL, depth_panel, self.along, stretch=(3, 2))
        stack(adaptive_splitter(760, self.heatmap, side, stretch=(1, 1)), owner=self)

    def draw(self, section: Section) -> None:
        trace, labels, position = self.trace, self.labels(), self.session.position
        points = residual_stream(trace.config.n_layers)
        row = depth_row(self.session.state, section)
        self.heatmap.set_tokens_dims(
            trace[section.shape_key],  # [T, E]
            labels,
            f"Residual stream, {_place(trace, section)}",
            position,
            hover=lambda r, c, v: f"token {labels[r]} · dim {c}: {v:.6g}",
        )
        if self._norms_of is not trace:  # the same for every residual section of a run
            self.norms, self._norms_of = depth_norms(trace), trace
        norms = self.norms  # [2L+1, T]
        depth_labels = [label for _, label in points]
        log = self.log_colours.isChecked()
        self.depth.set_matrix(
            np.log10(norms) if log else norms,
            depth_labels,
            labels,
            signed=False,
            title="‖x‖₂ per token at each depth" + (" (log₁₀ colours)" if log else ""),
            hover=lambda r, c, v: f"{points[r][0]} · token {labels[c]}: ‖x‖₂ = {norms[r, c]:.6g}",
        )
        self.depth.set_highlight_row(row)
        self.depth.keep_labels(rows=(row,), columns=(position,))
        self._position_line.setPos(position + 0.5)
        self.along.set_title(f"Token {labels[position]} along depth")
        self.along.set_places(depth_labels)
        self.along.set_curve("token", norms[:, position])
        self.along.set_curve("mean", norms.mean(axis=1))
        self.along.set_marker(row)

    def _open_row(self, row: int) -> None:
        self.session.open_stage(residual_stream(self.trace.config.n_layers)[row][0])

    def _open_hovered_stage(self) -> None:
        if self._hovered_row is not None:
            self._open_row(self._hovered_row)
