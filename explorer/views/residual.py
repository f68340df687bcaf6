"""The residual stream after a "+ residual" step (a block's middle, after attention, or its
output, after the feed-forward): the stream as a tokens x dims heatmap, every token's L2
norm at every depth as a depth x tokens heatmap with this stage's row marked, and the
selected token's norm along depth.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QSplitter, QVBoxLayout, QWidget

from gpt_core import Trace

from ..steps import Step
from ..widgets.heatmap import Heatmap
from ..widgets.plots import MARKER_PEN, LabelledPlot, number_columns
from .base import StageView


def depth_stages(n_layers: int) -> list[tuple[str, str, str]]:
    """(trace key, short label, full name) of each place along the residual stream."""
    rows = [("embeddings/sum", "embeddings", "embeddings x₀ = token + position")]
    for i in range(n_layers):
        rows.append((f"blocks/{i}/resid_mid", f"B{i} mid", f"block {i} middle (x + attention)"))
        rows.append((f"blocks/{i}/out", f"B{i} out", f"block {i} out (x + feed-forward)"))
    return rows


def depth_row(kind: str, layer: int | None) -> int:
    """The row of depth_stages that a step shows."""
    if kind == "embeddings":
        return 0
    return 1 + 2 * layer + (kind == "block_out")


def depth_norms(trace: Trace) -> np.ndarray:
    """L2 norm of every token's residual vector at every depth: [2L + 1, T]."""
    keys = [key for key, _, _ in depth_stages(trace.config.n_layers)]
    return np.stack([np.linalg.norm(trace[key], axis=-1) for key in keys])  # [2L+1, T]


class ResidualView(StageView):
    kinds = ("resid_mid", "block_out")

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.heatmap = Heatmap()
        self.heatmap.clicked.connect(lambda row, col: self.session.select_position(row))
        self.depth = Heatmap()
        self.depth.clicked.connect(lambda row, col: self.session.select_position(col))
        self._position_line = pg.InfiniteLine(angle=90, pen=MARKER_PEN)
        self.depth.plot.addItem(self._position_line)
        self._hovered_row: int | None = None
        self.depth.hovered.connect(lambda row, col: setattr(self, "_hovered_row", row))
        self.depth.add_menu_action("Open the stage under the pointer", self._open_hovered_stage)
        self.log_colours = QCheckBox("log colour scale (when a few tokens dwarf the rest)")
        self.log_colours.toggled.connect(self.redraw)
        self.along = LabelledPlot(
            "", "depth (click a point to open that stage)", "‖x‖₂", tick_every=2
        )
        self.along.add_curve("token", "selected token", "#1c7ed6")
        self.along.add_curve("mean", "mean over tokens", "#868e96", Qt.PenStyle.DashLine)
        self.along.placeClicked.connect(self._open_stage)
        self.norms = np.zeros((0, 0), dtype=np.float32)  # [2L+1, T]
        self._norms_of: Trace | None = None

        depth_panel = QWidget()
        depth_layout = QVBoxLayout(depth_panel)
        depth_layout.setContentsMargins(0, 0, 0, 0)
        depth_layout.addWidget(self.depth, 1)
        depth_layout.addWidget(self.log_colours)
        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(depth_panel)
        side.addWidget(self.along)
        side.setStretchFactor(0, 3)
        side.setStretchFactor(1, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.heatmap)
        split.addWidget(side)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def draw(self, step: Step) -> None:
        trace, labels, position = self.trace, self.labels(), self.session.position
        stages = depth_stages(trace.config.n_layers)
        row = depth_row(step.kind, step.layer)
        key, _, full = stages[row]
        stream = trace[key]  # [T, E]
        self.heatmap.set_matrix(
            stream,
            labels,
            [str(d) for d in range(stream.shape[1])],
            signed=True,
            title=f"Residual stream, {full} · {stream.shape[0]} tokens × {stream.shape[1]} dims",
            hover=lambda r, c, v: f"token {labels[r]} · dim {c}: {v:.6g}",
        )
        number_columns(self.heatmap)
        self.heatmap.set_highlight_row(position)

        if self._norms_of is not trace:  # the same for every residual step of a run
            self.norms, self._norms_of = depth_norms(trace), trace
        norms = self.norms  # [2L+1, T]
        depth_labels = [s for _, s, _ in stages]
        log = self.log_colours.isChecked()
        self.depth.set_matrix(
            np.log10(norms) if log else norms,
            depth_labels,
            labels,
            signed=False,
            title="‖x‖₂ per token at each depth" + (" (log₁₀ colours)" if log else ""),
            hover=lambda r, c, v: f"{stages[r][2]} · token {labels[c]}: ‖x‖₂ = {norms[r, c]:.6g}",
        )
        self.depth.set_highlight_row(row)
        self._position_line.setPos(position + 0.5)

        self.along.set_title(f"Token {labels[position]} along depth")
        self.along.set_places(depth_labels)
        self.along.set_curve("token", norms[:, position])
        self.along.set_curve("mean", norms.mean(axis=1))
        self.along.set_marker(row)

    def _open_stage(self, row: int) -> None:
        key_kind = "embeddings" if row == 0 else ("resid_mid" if row % 2 else "block_out")
        layer = None if row == 0 else (row - 1) // 2
        for index, step in enumerate(self.session.steps):
            if step.kind == key_kind and step.layer == layer:
                self.session.select_step(index)
                return

    def _open_hovered_stage(self) -> None:
        if self._hovered_row is not None:
            self._open_stage(self._hovered_row)
