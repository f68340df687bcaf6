"""Vectors on their first two principal axes: a scatter, optionally joined in order
(positions 0, 1, 2, … trace a curve), with chosen points picked out. As many labels as fit
without overlapping are drawn (the picked points' always, then the points farthest out,
which have room), placed again whenever the view is resized or zoomed; every point names
itself in a tooltip on hover. Clicking a point reports its index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal
from PySide6.QtGui import QFontMetricsF

from explorer.ui.widgets.axes import style_axes
from gpt_core.analysis import Projection

PLAIN, PICKED = "#adb5bd", "#e8590c"
LABEL_GAP_PX = 6  # free space kept around each label: packed labels read as one blot


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
        self.points = pg.ScatterPlotItem(
            size=7, pen=None, hoverable=True, tip=self._tip, hoverSize=10
        )
        self.points.sigClicked.connect(self._clicked)
        self.addItem(self.path)
        self.addItem(self.points)
        self.names: list[str] = []  # every point's label, for its tooltip
        self.coords = np.zeros((0, 2))  # [N, 2]
        self.picked: tuple[int, ...] = ()
        self.labels: list[pg.TextItem] = []  # a pool: the first len(shown) are in use
        self.shown: list[int] = []  # the points whose labels are drawn
        box = self.plotItem.getViewBox()
        box.sigRangeChanged.connect(self._place_labels)
        box.sigResized.connect(self._place_labels)

    @property
    def shown_labels(self) -> list[str]:
        return [self.names[i] for i in self.shown]

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
        self.names, self.coords, self.picked = list(labels), coords, tuple(picked)
        self.autoRange()
        self._place_labels()

    def _tip(self, x: float, y: float, data) -> str:
        return self.names[int(data)]

    def _place_labels(self) -> None:
        """Label the points whose labels fit beside them, in view, overlapping no other."""
        box = self.plotItem.getViewBox()
        if not len(self.coords) or box.width() < 1 or box.height() < 1:
            self._show_labels([], np.zeros((0, 2)))
            return
        # From the view's range and place (its transform may not follow a resize yet).
        (left, right), (bottom, top) = box.viewRange()
        room = box.sceneBoundingRect()
        pixels = np.stack(  # [N, 2] where each point is drawn, in scene pixels
            [
                room.left() + (self.coords[:, 0] - left) / (right - left) * room.width(),
                room.top() + (top - self.coords[:, 1]) / (top - bottom) * room.height(),
            ],
            axis=1,
        )
        metrics = QFontMetricsF(self._label_item(0).textItem.font())
        sizes = [(metrics.horizontalAdvance(name), metrics.height()) for name in self.names]
        shown = readable_labels(pixels, sizes, self.picked, room)
        self._show_labels(shown, pixels)

    def _show_labels(self, shown: list[int], pixels: np.ndarray) -> None:
        self.shown = shown
        for slot, index in enumerate(shown):
            item = self._label_item(slot)
            item.setText(self.names[index], color=PICKED if index in self.picked else "#343a40")
            item.setPos(*self.coords[index])
            item.setVisible(True)
        for item in self.labels[len(shown) :]:
            item.setVisible(False)

    def _label_item(self, slot: int) -> pg.TextItem:
        while len(self.labels) <= slot:
            item = pg.TextItem("", anchor=(0, 1))  # above and right of its point
            item.textItem.document().setDocumentMargin(0)
            item.setVisible(False)
            self.addItem(item, ignoreBounds=True)
            self.labels.append(item)
        return self.labels[slot]

    def _clicked(self, item, points, event=None) -> None:
        if len(points):
            self.pointClicked.emit(int(points[0].data()))


def readable_labels(
    pixels: np.ndarray, sizes: Sequence[tuple[float, float]], picked: Sequence[int], room: QRectF
) -> list[int]:
    """The points to label: each label's box (width, height) sits above and right of its
    point at `pixels` [N, 2]; a label is drawn if its box is inside `room` and clear of every
    label drawn already. The picked points come first (and are drawn even at the edge), then
    the points farthest from the middle, where there is room."""
    centre = pixels.mean(axis=0)
    farthest = np.argsort(-np.linalg.norm(pixels - centre, axis=1), kind="stable")
    order = list(dict.fromkeys([*picked, *farthest.tolist()]))
    taken: list[QRectF] = []
    shown = []
    for index in order:
        width, height = sizes[index]
        x, y = pixels[index]
        box = QRectF(x, y - height, width, height)
        padded = box.adjusted(-LABEL_GAP_PX, -LABEL_GAP_PX, LABEL_GAP_PX, LABEL_GAP_PX)
        if index not in picked and not room.contains(box):
            continue
        if any(padded.intersects(other) for other in taken):
            continue
        taken.append(box)
        shown.append(index)
    return sorted(shown)
