"""One look for every plot's axes: dark lines and text on white, plain numbers."""

from __future__ import annotations

import pyqtgraph as pg

AXIS_PEN = "#444"
AXIS_TEXT = "#222"


def style_axes(plot: pg.PlotItem, **labels: str) -> None:
    """Style the left and bottom axes; `bottom="token"` etc. also labels them."""
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(AXIS_PEN)
        axis.setTextPen(AXIS_TEXT)
        axis.enableAutoSIPrefix(False)  # "(x0.001)" beside a value reads as a unit
    for name, text in labels.items():
        plot.setLabel(name, text, color=AXIS_TEXT)


def fixed_plot(plot: pg.PlotItem) -> None:
    """A plot that does not pan, zoom or offer pyqtgraph's menu."""
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(x=False, y=False)
