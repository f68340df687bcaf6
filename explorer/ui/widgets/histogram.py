"""One parameter vector as a histogram, with a dashed line at its identity value."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from explorer.ui.widgets.axes import fixed_plot, style_axes


class Histogram(pg.PlotWidget):
    def __init__(self, identity: float, parent=None):
        super().__init__(parent, background="w")
        self.setMinimumHeight(120)
        item = self.getPlotItem()
        fixed_plot(item)
        style_axes(item, bottom="value", left="count")
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
        finite = values[np.isfinite(values)]
        if finite.size < values.size:
            title = f"{title} ({values.size - finite.size:,} NaN/Inf left out)"
        values = finite if finite.size else np.zeros(1)
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
