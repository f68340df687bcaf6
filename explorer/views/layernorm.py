"""LayerNorm (norm1, norm2 of a block, or the final norm): per-token mean and variance of
the input x, of the normalised z = (x - mean) / sqrt(var + eps) (recomputed here from the
input, so the learner sees it come out at 0 and 1) and of the output y = scale * z + shift;
histograms of the learned scale and shift; and a tokens x dims heatmap of y (or of x, z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from ..steps import Step
from ..widgets.heatmap import Heatmap
from ..widgets.plots import ChoiceButtons, LabelledPlot, number_columns
from .base import StageView

EPS = 1e-5  # as gpt_core.model.layer_norm.LayerNorm

# stage -> (legend text, curve colour, curve style); z is dashed: with scale 1 and shift 0
# (fresh weights) y equals z and the two curves lie on each other.
STAGES = {
    "input": ("input x", "#1c7ed6", Qt.PenStyle.SolidLine),
    "out": ("output y", "#2b8a3e", Qt.PenStyle.SolidLine),
    "normalised": ("normalised z", "#ae3ec9", Qt.PenStyle.DashLine),
}
HEATMAP_CHOICES = {
    "out": "Output y = scale·z + shift",
    "normalised": "Normalised z (before scale/shift)",
    "input": "Input x",
}


@dataclass(frozen=True)
class NormSources:
    """Where one LayerNorm's data lives in the trace and the model."""

    name: str  # "norm1 of block 0", ...
    prefix: str  # trace keys {prefix}/mean, /var, /out
    parameter: str  # parameters {parameter}.scale, .shift
    input_key: str  # the trace key of what the norm reads


def norm_sources(kind: str, layer: int | None, n_layers: int) -> NormSources:
    if kind == "ln1":
        before = "embeddings/sum" if layer == 0 else f"blocks/{layer - 1}/out"
        return NormSources(
            f"norm1 of block {layer}", f"blocks/{layer}/ln1", f"trf_blocks.{layer}.norm1", before
        )
    if kind == "ln2":
        return NormSources(
            f"norm2 of block {layer}",
            f"blocks/{layer}/ln2",
            f"trf_blocks.{layer}.norm2",
            f"blocks/{layer}/resid_mid",
        )
    return NormSources("the final norm", "final_norm", "final_norm", f"blocks/{n_layers - 1}/out")


def normalise(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """z: each token's vector centred and scaled to unit variance."""
    return (x - mean[:, None]) / np.sqrt(var[:, None] + EPS)  # [T, E]


class Histogram(pg.PlotWidget):
    """One learned parameter vector as a histogram, with a line at its identity value."""

    def __init__(self, identity: float, parent=None):
        super().__init__(parent, background="w")
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        for name, text in (("bottom", "value"), ("left", "count")):
            axis = item.getAxis(name)
            axis.setPen("#444")
            axis.setTextPen("#222")
            axis.enableAutoSIPrefix(False)
            item.setLabel(name, text, color="#222")
        self.bars = self.plot(
            [0, 1], [0], stepMode="center", fillLevel=0, brush="#74c0fc", pen="#1971c2"
        )
        self.identity = pg.InfiniteLine(
            identity,
            angle=90,
            pen=pg.mkPen("#868e96", style=Qt.PenStyle.DashLine),
            label=f"identity ({identity:g})",
            labelOpts={"position": 0.9, "color": "#495057"},
        )
        self.addItem(self.identity)
        self.counts = np.zeros(0)
        self.edges = np.zeros(1)

    def set_values(self, values: np.ndarray, title: str) -> None:
        bins = int(np.clip(np.sqrt(values.size), 10, 60))
        self.counts, self.edges = np.histogram(values, bins=bins)
        self.bars.setData(self.edges, self.counts)
        low, high = values.min(), values.max()
        summary = (
            f"all {values.size} = {low:g}"
            if low == high
            else f"{values.size} values, mean {values.mean():.3g}, {low:.3g} … {high:.3g}"
        )
        self.setTitle(f"{title}: {summary}", color="#222", size="9pt")


class LayerNormView(StageView):
    kinds = ("ln1", "ln2", "final_norm")

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.choice = ChoiceButtons("Heatmap of:", HEATMAP_CHOICES, "out")
        self.choice.changed.connect(self.redraw)
        self.heatmap = Heatmap()
        self.heatmap.clicked.connect(lambda row, col: self.session.select_position(row))
        self.mean_plot = LabelledPlot("Mean per token", "token", "mean over dims")
        self.var_plot = LabelledPlot("Variance per token", "token", "variance (log scale)")
        self.var_plot.setLogMode(y=True)  # x's variance can be 1000x that of z
        for plot in (self.mean_plot, self.var_plot):
            for key, (text, color, style) in STAGES.items():
                plot.add_curve(key, text, color, style)
            plot.placeClicked.connect(self.session.select_position)
        self.check = QLabel()
        self.check.setWordWrap(True)
        self.check.setStyleSheet("color: #495057;")
        self.scale_hist = Histogram(1.0)
        self.shift_hist = Histogram(0.0)
        self.stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # stage -> (mean, var) [T]

        params = QSplitter(Qt.Orientation.Vertical)
        params.addWidget(self.scale_hist)
        params.addWidget(self.shift_hist)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.heatmap)
        top.addWidget(params)
        top.setSizes([650, 350])
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.mean_plot)
        plots.addWidget(self.var_plot)
        stats_panel = QWidget()
        stats_layout = QVBoxLayout(stats_panel)
        stats_layout.setContentsMargins(0, 0, 0, 0)
        stats_layout.addWidget(plots, 1)
        stats_layout.addWidget(self.check)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(stats_panel)
        split.setSizes([550, 450])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.choice)
        layout.addWidget(split, 1)

    def draw(self, step: Step) -> None:
        trace, labels, position = self.trace, self.labels(), self.session.position
        src = norm_sources(step.kind, step.layer, trace.config.n_layers)
        x = trace[src.input_key]  # [T, E]
        mean, var = trace[f"{src.prefix}/mean"], trace[f"{src.prefix}/var"]  # [T]
        arrays = {
            "input": x,
            "normalised": normalise(x, mean, var),
            "out": trace[f"{src.prefix}/out"],
        }
        self.stats = {
            "input": (mean, var),
            "normalised": (arrays["normalised"].mean(-1), arrays["normalised"].var(-1)),
            "out": (arrays["out"].mean(-1), arrays["out"].var(-1)),
        }

        shown = self.choice.chosen
        matrix = arrays[shown]
        name = HEATMAP_CHOICES[shown]
        self.heatmap.set_matrix(
            matrix,
            labels,
            [str(d) for d in range(matrix.shape[1])],
            signed=True,
            title=f"{name} · {matrix.shape[0]} tokens × {matrix.shape[1]} dims",
            hover=lambda r, c, v: f"{name} of {src.name} · token {labels[r]} · dim {c}: {v:.6g}",
        )
        number_columns(self.heatmap)
        self.heatmap.set_highlight_row(position)

        for plot, which in ((self.mean_plot, 0), (self.var_plot, 1)):
            plot.set_places(labels)
            for stage, values in self.stats.items():
                plot.set_curve(stage, values[which])
            plot.set_marker(position)
        scale = self.session.parameter(f"{src.parameter}.scale")  # [E]
        shift = self.session.parameter(f"{src.parameter}.shift")  # [E]
        self.scale_hist.set_values(scale, "Learned scale")
        self.shift_hist.set_values(shift, "Learned shift")
        untrained = (
            " Here scale is all 1 and shift all 0 (as initialised), so y equals z and their "
            "curves lie on each other."
            if np.all(scale == 1) and np.all(shift == 0)
            else ""
        )
        z_mean, z_var = self.stats["normalised"]
        self.check.setText(
            f"z = (x − mean) / √(var + {EPS:g}), recomputed here from the input x, has mean ≈ 0 "
            f"(largest |mean| {np.abs(z_mean).max():.1e}) and variance ≈ 1 "
            f"({z_var.min():.4f} … {z_var.max():.4f}) at every token, whatever x was: its "
            "variance is var / (var + eps), just under 1 where var is small. "
            "y = scale·z + shift then gives each dimension its own spread and centre." + untrained
        )
