"""Many points of one colour, drawn fast: rasterised with numpy into one image at paint
time."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QRectF
from PySide6.QtGui import QImage

_MAX_OVERLAP = 64  # dots on one pixel beyond which it is fully opaque anyway


class PointCloud(pg.GraphicsObject):
    """Many points of one colour, rasterised with numpy at paint time into one small image.
    (pyqtgraph's ScatterPlotItem does Python work per point, ~180 ms for 20k points here;
    QPainter.drawPoints with a wide pen takes ~25 ms; this takes a few.)"""

    def __init__(self, rgb: tuple[int, int, int], alpha: float, size: int = 3):
        super().__init__()
        self.rgb, self.size = np.array(rgb, dtype=np.float64), size
        # opacity of a pixel covered by n translucent dots, n = 0 .. _MAX_OVERLAP
        self._opacity = 1 - (1 - alpha) ** np.arange(_MAX_OVERLAP + 1)
        self.x = self.y = np.zeros(0)
        self._bounds = QRectF()

    def setData(self, x: np.ndarray, y: np.ndarray) -> None:
        self.prepareGeometryChange()
        self.x, self.y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self._bounds = QRectF()
        if self.x.size:
            low_x, low_y = self.x.min(), self.y.min()
            self._bounds = QRectF(low_x, low_y, self.x.max() - low_x, self.y.max() - low_y)
        self.informViewBoundsChanged()
        self.update()

    def getData(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x, self.y

    def clear(self) -> None:
        self.setData(np.zeros(0), np.zeros(0))

    # pyqtgraph's auto-range asks for the data's extent and the dots' size in pixels
    def dataBounds(self, axis, frac=1.0, orthoRange=None):
        if not self.x.size:
            return None, None
        values = self.x if axis == 0 else self.y
        return float(values.min()), float(values.max())

    def pixelPadding(self) -> float:
        return self.size

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()  # the padding below is in pixels: it follows the zoom

    def boundingRect(self) -> QRectF:
        pad_x, pad_y = self.pixelWidth() * self.size, self.pixelHeight() * self.size
        return self._bounds.adjusted(-pad_x, -pad_y, pad_x, pad_y)

    def paint(self, painter, *args) -> None:
        if not self.x.size:
            return
        t = painter.transform()  # data -> device pixels
        device = painter.device()
        region = t.mapRect(self.boundingRect()).toAlignedRect()
        region = region.intersected(QRect(0, 0, device.width(), device.height()))
        if region.isEmpty():
            return
        width, height, pad = region.width(), region.height(), self.size
        col = np.rint(t.m11() * self.x + t.m21() * self.y + t.dx()).astype(np.int64)  # [N]
        row = np.rint(t.m12() * self.x + t.m22() * self.y + t.dy()).astype(np.int64)  # [N]
        col, row = col - region.x() + pad, row - region.y() + pad
        inside = (col >= 0) & (col < width + 2 * pad) & (row >= 0) & (row < height + 2 * pad)
        padded = np.bincount(
            row[inside] * (width + 2 * pad) + col[inside],
            minlength=(height + 2 * pad) * (width + 2 * pad),
        ).reshape(height + 2 * pad, width + 2 * pad)  # dot centres per pixel
        offsets = range(pad - self.size // 2, pad - self.size // 2 + self.size)
        counts = sum(padded[r : r + height, c : c + width] for r in offsets for c in offsets)
        opacity = self._opacity[np.minimum(counts, _MAX_OVERLAP)]  # [H, W]
        rgba = np.empty((height, width, 4), dtype=np.uint8)
        rgba[..., :3] = (opacity[..., None] * self.rgb).astype(np.uint8)  # premultiplied
        rgba[..., 3] = (opacity * 255).astype(np.uint8)
        image = QImage(
            rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888_Premultiplied
        )
        painter.save()
        painter.resetTransform()
        painter.drawImage(region.topLeft(), image)
        painter.restore()
