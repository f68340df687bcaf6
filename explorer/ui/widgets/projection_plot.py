"""Vectors on their first two principal axes: a labelled scatter (labels thinned to stay
readable), optionally joined in order (positions 0, 1, 2, … trace a curve), with chosen
points picked out. Clicking a point reports its index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal

from explorer.ui.widgets.axes import style_axes
from gpt_core.analysis import Projection

MAX_LABELS = 40  # more labels than this overlap into a blot
PLAIN, PICKED = "#adb5bd", "#e8590c"


class ProjectionPlot(pg.PlotWidget):
    pointClicked = Signal(int)

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.setMinimumSize(220, 200)
        self.base_title = title
        self.plotItem.setMenuEnabled(False)
        style_axes(self.plotItem)
        self.path = pg.PlotDataItem(pen=pg.mkPen("#dee2e6", width=1))
        self.points = pg.ScatterPlotItem(size=7, pen=None)
        self.points.sigClicked.connect(self._clicked)
        self.addItem(self.path)
        self.addItem(self.points)
        self.labels: list[pg.TextItem] = []
        self.shown_labels: list[str] = []

    def set_projection(
        self,
        projection: Projection,
        labels: Sequence[str],
        picked: Sequence[int] = (),
        joined: bool = False,
    ) -> None:
        coords = projection.coords.astype(np.float64)  # [N, 2]
        first, second = 100 * projection.explained
        self.plotItem.setTitle(f"{self.base_title} · PCA", color="#222", size="10pt")
        style_axes(self.plotItem, bottom=f"PC1 ({first:.1f} %)", left=f"PC2 ({second:.1f} %)")
        self.path.setData(coords[:, 0], coords[:, 1]) if joined else self.path.setData([], [])
        brushes = [pg.mkBrush(PLAIN)] * len(coords)
        for index in picked:
            brushes[index] = pg.mkBrush(PICKED)
        self.points.setData(
            x=coords[:, 0], y=coords[:, 1], brush=brushes, data=np.arange(len(coords))
        )
        for item in self.labels:
            self.removeItem(item)
        shown = _labelled(len(coords), picked)
        self.shown_labels = [labels[i] for i in shown]
        self.labels = []
        for index in shown:
            item = pg.TextItem(labels[index], color=PICKED if index in picked else "#343a40")
            item.setPos(*coords[index])
            self.addItem(item)
            self.labels.append(item)
        self.autoRange()

    def _clicked(self, item, points, event=None) -> None:
        if len(points):
            self.pointClicked.emit(int(points[0].data()))


def _labelled(count: int, picked: Sequence[int]) -> list[int]:
    """Every point while they are few; else every n-th and the picked ones."""
    if count <= MAX_LABELS:
        return list(range(count))
    stride = int(np.ceil(count / MAX_LABELS))
    return sorted(set(range(0, count, stride)) | set(picked))
