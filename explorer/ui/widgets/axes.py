"""One look for every plot's axes: dark lines and text on white, plain numbers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontMetrics

from explorer.ui.widgets.labels import fitting_title

AXIS_PEN = "#444"
AXIS_TEXT = "#222"
# A plot's data area (its view box) at least this wide and tall, in px: smaller and curves
# are flat lines, cells slivers. A widget showing several plots (a grid of thumbnails)
# documents its own `min_plot_px`; the layout audit (tests/layout_checks.py) holds both.
PLOT_MIN_PX = (240, 160)
LABEL_GAP_PX = 4  # free space between two axis labels


def style_axes(plot: pg.PlotItem, **labels: str) -> None:
    """Style the left and bottom axes; `bottom="token"` etc. also labels them. The title
    wraps to the plot's width rather than pushing its right edge out of view."""
    fitting_title(plot)
    box = plot.getViewBox()
    # after the resize, not within it: a minimum size that resizes the widget while Qt
    # lays out its viewport would leave the viewport at the old size
    box.sigResized.connect(lambda: QTimer.singleShot(0, box, lambda: keep_plot_room(plot)))
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(AXIS_PEN)
        axis.setTextPen(AXIS_TEXT)
        axis.enableAutoSIPrefix(False)  # "(x0.001)" beside a value reads as a unit
    for name, text in labels.items():
        plot.setLabel(name, text, color=AXIS_TEXT)


class SpacedAxis(pg.AxisItem):
    """A vertical axis that leaves out a finer level of ticks whose labels would run into
    the others' (pyqtgraph spaces a log scale's 2, 3, … 9 by value, not by room)."""

    def tickValues(self, minVal: float, maxVal: float, size: float):
        levels = super().tickValues(minVal, maxVal, size)
        span = abs(maxVal - minVal) * self.scale
        if self.orientation not in ("left", "right") or span <= 0 or size <= 0:
            return levels
        room = QFontMetrics(self.style.get("tickFont") or self.font()).height() * span / size
        kept, values = [], []  # the levels, and every value kept so far
        for spacing, level in levels:
            shown = []
            for value in level:  # coarser levels first: theirs stay, finer ones fit between
                if all(abs(value - other) >= room for other in values):
                    shown.append(value)
                    values.append(value)
            kept.append((spacing, shown))
        return kept


def keep_plot_room(plot: pg.PlotItem) -> None:
    """The widget showing `plot` asks for the room its title, axes and colour bar take
    around the data area, plus PLOT_MIN_PX (or its own `min_plot_px`) for the data: in a
    scroll area the view then scrolls instead of squeezing the plot into a strip."""
    scene, box = plot.scene(), plot.getViewBox()
    if scene is None or not scene.views() or box.width() <= 0 or box.height() <= 0:
        return
    view = scene.views()[0]
    plots = [i for i in scene.items() if type(i) is pg.PlotItem]
    if len(plots) > 1:
        return  # several plots in one widget: it sizes itself (and documents min_plot_px)
    frame_w, frame_h = view.width() - box.width(), view.height() - box.height()
    if frame_w < 0 or frame_h < 0:
        return
    low_w, low_h = getattr(view, "min_plot_px", PLOT_MIN_PX)
    width, height = int(frame_w + low_w + 1), int(frame_h + low_h + 1)
    view.setMinimumSize(width, height)
    view.setMaximumSize(max(width, view.maximumWidth()), max(height, view.maximumHeight()))


def fixed_plot(plot: pg.PlotItem) -> None:
    """A plot that does not pan, zoom or offer pyqtgraph's menu."""
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(x=False, y=False)


def thinned_ticks(
    labels: Sequence[str],
    visible: tuple[float, float],
    room_px: float,
    label_px: float,
    keep: Iterable[int] = (),
) -> list[tuple[float, str]]:
    """Ticks at the centres of the cells in `visible` (a range in cell units): every n-th
    cell, n the fewest cells that hold `label_px` in `room_px`, counted from the first cell
    of `keep` in view (the selected position, where two prompts differ), and the other cells
    of `keep` too; at least two, or one for one cell, even when the room is too small: an
    axis with no label says nothing."""
    first = max(0, int(np.floor(visible[0])))
    last = min(len(labels), int(np.ceil(visible[1])))
    count = last - first
    if count <= 0:
        return []
    cell_px = room_px / max(visible[1] - visible[0], 1e-9)
    gap = max(1, int(np.ceil(label_px / max(cell_px, 1e-9))))  # cells from label to label
    kept = [k for k in dict.fromkeys(keep) if first <= k < last]
    anchor = kept[0] if kept else first
    cells = set(range(first + (anchor - first) % gap, last, gap))
    for k in kept[1:]:  # the others displace their neighbours
        cells = {c for c in cells if abs(c - k) >= gap} | {k}
    if count > 1 and len(cells) < 2:
        cells |= {first, last - 1}
    return [(i + 0.5, labels[i]) for i in sorted(cells)]
