"""Bars over named places (a vector's components, or the tokens of a row): one or more series
of bars, places that hold no number (the causal mask's -inf) marked grey along the axis, a
marker at the selected place; a click reports the nearest place. One BarGraphItem a series,
so a row of 1,024 tokens redraws in a few milliseconds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg

from explorer.ui.widgets.plots import MAX_SYMBOLS, LabelledPlot

MISSING_COLOUR = "#adb5bd"


class BarChart(LabelledPlot):
    """add_bars() declares a series; set_bars() gives its heights."""

    def __init__(self, title: str, x_label: str, y_label: str, parent=None):
        super().__init__(title, x_label, y_label, parent=parent)
        self.bars: dict[str, pg.BarGraphItem] = {}
        self._offsets: dict[str, tuple[float, float]] = {}  # key -> (x offset, width)
        # A thick grey run along the axis, a mark at each place while there are few: cheap
        # for the 1,000 masked keys of a long prompt's first rows.
        self.missing = pg.PlotDataItem(
            pen=pg.mkPen(MISSING_COLOUR, width=3), symbolBrush=MISSING_COLOUR, symbolPen=None
        )
        self.addItem(self.missing)
        zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#868e96", width=1))
        self.addItem(zero)

    def add_bars(
        self, key: str, name: str, colour: str, offset: float = 0.0, width: float = 0.8
    ) -> None:
        """A series of bars; several share a place side by side through `offset`."""
        item = pg.BarGraphItem(x=[], height=[], width=width, brush=colour, pen=None)
        self.addItem(item)
        self.bars[key] = item
        self._offsets[key] = (offset, width)
        self.legend.append(f"<span style='color:{colour}'>■</span>&nbsp;{name}")
        self.set_title(self.caption)

    def set_bars(self, key: str, heights: np.ndarray, first: int = 0) -> None:
        """Series `key`'s bars at places first, first + 1, ..."""
        offset, width = self._offsets[key]
        x = np.arange(first, first + len(heights)) + offset
        self.bars[key].setOpts(x=x, height=np.asarray(heights, dtype=np.float64), width=width)

    def set_numbered(self, count: int) -> None:
        """Places 0 .. count - 1 named by their numbers, with pyqtgraph's round ticks."""
        self.names = []
        self.getPlotItem().getAxis("bottom").setTicks(None)
        self.setXRange(-0.5, count - 0.5, padding=0.02)

    def set_missing(self, places: Sequence[int] | np.ndarray) -> None:
        """Places with no bar, marked grey along the axis (the title says what they are)."""
        places = np.asarray(places)
        symbol = "t" if len(places) <= MAX_SYMBOLS else None
        self.missing.setData(places, np.zeros(len(places)), symbol=symbol, symbolSize=7)
