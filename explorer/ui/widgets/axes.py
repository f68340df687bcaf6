"""One look for every plot's axes: dark lines and text on white, plain numbers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg

from explorer.ui.widgets.labels import fitting_title

AXIS_PEN = "#444"
AXIS_TEXT = "#222"


def style_axes(plot: pg.PlotItem, **labels: str) -> None:
    """Style the left and bottom axes; `bottom="token"` etc. also labels them. The title
    wraps to the plot's width rather than pushing its right edge out of view."""
    fitting_title(plot)
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


def thinned_ticks(
    labels: Sequence[str], visible: tuple[float, float], room_px: float, label_px: float
) -> list[tuple[float, str]]:
    """Ticks at the centres of the cells in `visible` (a range in cell units), every n-th
    so that they fit `room_px` at `label_px` each; at least two, or one for one cell, even
    when the room is too small: an axis with no label says nothing."""
    first = max(0, int(np.floor(visible[0])))
    last = min(len(labels), int(np.ceil(visible[1])))
    count = last - first
    if count <= 0:
        return []
    fit = max(2, int(room_px // max(label_px, 1.0)))
    stride = max(1, int(np.ceil(count / fit)))
    if count > 1 and stride >= count:  # the last visible cell as the second label
        return [(first + 0.5, labels[first]), (last - 0.5, labels[last - 1])]
    return [(i + 0.5, labels[i]) for i in range(first, last, stride)]
