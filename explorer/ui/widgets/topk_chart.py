"""Horizontal bars of next-token probabilities, the most likely at the top."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from explorer.ui.widgets.axes import PLOT_MIN_PX, fixed_plot, keep_plot_room, style_axes

BAR_COLOR = "#4c6ef5"
ACTUAL_COLOR = "#2f9e44"  # the prompt's actual next token
ROW_PX = 16  # one bar and its token label; less and the labels overlap


def short_probability(p: float) -> str:
    """At most five characters, so five lens columns fit: "31%", "0.3%", "2e-5" (random
    weights give ~1e-5, which a percentage would round to 0)."""
    if not np.isfinite(p):
        return "NaN"
    if p >= 0.095:  # rounds to 10% or more
        return f"{p:.0%}"
    if p >= 0.00095:  # rounds to 0.1% or more
        return f"{p:.1%}"
    if p == 0:
        return "0"
    mantissa, exponent = f"{p:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


class ProbabilityRows(pg.PlotWidget):
    """A plot of probabilities (x) by token (rows, the first at the top), fixed in place."""

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        item = self.getPlotItem()
        fixed_plot(item)
        style_axes(item, bottom="probability")
        self.invertY(True)
        self.showGrid(x=True, alpha=0.2)


class TopKChart(ProbabilityRows):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.bars = pg.BarGraphItem(x0=0, y=[], height=0.7, width=[])
        self.addItem(self.bars)

    def set_predictions(self, tokens: list[str], probs: np.ndarray, actual: int | None) -> None:
        """tokens and probs [k] by rank; `actual` is the rank of the prompt's next token."""
        ranks = np.arange(len(tokens))
        brushes = [ACTUAL_COLOR if r == actual else BAR_COLOR for r in ranks]
        self.bars.setOpts(y=ranks, width=probs, brushes=brushes, pen=None)
        # a row per token: the data area grows past the least plot size for a long list
        self.min_plot_px = (PLOT_MIN_PX[0], max(PLOT_MIN_PX[1], ROW_PX * len(tokens)))
        keep_plot_room(self.getPlotItem())
        self.getAxis("left").setTicks([[(r, tokens[r]) for r in ranks]])
        finite = probs[np.isfinite(probs)]
        top = float(finite.max()) if finite.size else 1.0  # NaN bars stay empty, axes sane
        # One round tick mid-range (and the grid): pyqtgraph's own ticks (5e-05, 0.0001,
        # 0.00015) run into each other on a chart this narrow, and it hides those at the ends.
        middle = float(f"{top / 2:.1g}")
        self.getAxis("bottom").setTicks([[(middle, f"{middle:g}")]])
        self.setRange(xRange=(0, top * 1.05), yRange=(-0.6, len(tokens) - 0.4), padding=0)
