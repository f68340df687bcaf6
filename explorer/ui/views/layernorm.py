"""LayerNorm (norm1, norm2 of a block, or the final norm): per-token mean and variance of
the input x, of the normalised z = (x - mean) / sqrt(var + eps) (recomputed here from the
input, so the learner sees it come out at 0 and 1) and of the output y = scale * z + shift;
histograms of the learned scale and shift; and a tokens x dims heatmap of y (or of x, z).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from explorer.ui.views.base import StageView
from explorer.ui.widgets.heatmap import TokensByDims
from explorer.ui.widgets.histogram import Histogram
from explorer.ui.widgets.layout import VERTICAL, adaptive_splitter, splitter, stack
from explorer.ui.widgets.plots import ChoiceButtons, LabelledPlot
from gpt_core.model.layer_norm import EPS
from gpt_core.probe.sections import Section
from gpt_core.probe.stages import stream_before

# array -> (legend text, curve colour, curve style); z is dashed: with scale 1 and shift 0
# (fresh weights) y equals z and the two curves lie on each other.
CURVES = {
    "input": ("input x", "#1c7ed6", Qt.PenStyle.SolidLine),
    "out": ("output y", "#2b8a3e", Qt.PenStyle.SolidLine),
    "normalised": ("normalised z", "#ae3ec9", Qt.PenStyle.DashLine),
}
HEATMAP_CHOICES = {
    "out": "Output y = scale·z + shift",
    "normalised": "Normalised z (before scale/shift)",
    "input": "Input x",
}


def normalise(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """z: each token's vector centred and scaled to unit variance."""
    return (x - mean[:, None]) / np.sqrt(var[:, None] + EPS)  # [T, E]


class LayerNormView(StageView):
    name = "layernorm"

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.choice = ChoiceButtons("Heatmap of:", HEATMAP_CHOICES, "out")
        self.heatmap = TokensByDims()
        self.heatmap.setMinimumHeight(240)
        self.mean_plot = LabelledPlot("Mean per token", "token", "mean over dims")
        self.var_plot = LabelledPlot("Variance per token", "token", "variance (log scale)")
        self.var_plot.setLogMode(y=True)  # x's variance can be 1000x that of z
        for plot in (self.mean_plot, self.var_plot):
            for key, (text, color, style) in CURVES.items():
                plot.add_curve(key, text, color, style)
        self.check = QLabel()
        self.check.setWordWrap(True)
        self.check.setStyleSheet("color: #495057;")
        self.scale_hist = Histogram(1.0)
        self.shift_hist = Histogram(0.0)
        self.stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # array -> (mean, var) [T]
        self._lay_out()
        self.choice.changed.connect(self.redraw)
        self.heatmap.clicked.connect(lambda row, col: self.session.select_position(row))
        for plot in (self.mean_plot, self.var_plot):
            plot.placeClicked.connect(self.session.select_position)

    def _lay_out(self) -> None:
        params = stack(self.scale_hist, self.shift_hist)  # each keeps its least height
        top = adaptive_splitter(700, self.heatmap, params, stretch=(2, 1))
        plots = adaptive_splitter(760, self.mean_plot, self.var_plot)
        # The check's wrapped lines below the splitter, whose panes do not grow with them.
        split = splitter(VERTICAL, top, plots, sizes=(550, 450))
        stack((self.choice, 0), split, self.check, owner=self)

    def draw(self, section: Section) -> None:
        trace, labels, position = self.trace, self.labels(), self.session.position
        x = trace[stream_before(section.key("mean"), trace.config.n_layers)]  # [T, E]
        mean, var = trace[section.key("mean")], trace[section.key("var")]  # [T]
        arrays = {
            "input": x,
            "normalised": normalise(x, mean, var),
            "out": trace[section.key("out")],
        }
        self.stats = {
            "input": (mean, var),
            "normalised": (arrays["normalised"].mean(-1), arrays["normalised"].var(-1)),
            "out": (arrays["out"].mean(-1), arrays["out"].var(-1)),
        }
        shown = self.choice.chosen
        name = HEATMAP_CHOICES[shown]
        self.heatmap.set_tokens_dims(
            arrays[shown],
            labels,
            name,
            position,
            hover=lambda r, c, v: (
                f"{name} of {section.title} · token {labels[r]} · dim {c}: {v:.6g}"
            ),
        )
        for plot, which in ((self.mean_plot, 0), (self.var_plot, 1)):
            plot.set_places(labels)
            for curve, values in self.stats.items():
                plot.set_curve(curve, values[which])
            plot.set_marker(position)
        module = section.parameter_modules()[0]
        parameters = self.session.state.model.small_parameters
        self._draw_parameters(parameters[f"{module}.scale"], parameters[f"{module}.shift"])  # [E]

    def _draw_parameters(self, scale: np.ndarray, shift: np.ndarray) -> None:
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
