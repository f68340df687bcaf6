"""Text inside the cells of a heatmap: one short string per cell, centred, elided to the
cell's width and left out where cells are too narrow to hold a few characters. Painted in
device pixels for the cells in view only, so a large grid costs what is visible."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics

MIN_CELL_PX = 28  # narrower cells show colour only
POINT_SIZE = 8  # small enough for a row of a 49-row grid on a laptop screen
DARK_TEXT, LIGHT_TEXT = QColor("#111111"), QColor("#ffffff")


class CellText(pg.GraphicsObject):
    """set_texts(texts, light) with texts[row][col] and light [rows, cols] bool: white
    text where the cell's colour is dark."""

    def __init__(self):
        super().__init__()
        # Qt fills option.exposedRect (the part to repaint) only when asked to.
        self.setFlag(self.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self._texts: list[list[str]] = []
        self._light = np.zeros((0, 0), dtype=bool)
        self.font = QFont()
        self.font.setPointSize(POINT_SIZE)

    @property
    def row_px(self) -> int:
        """The least height a row needs for its text to show."""
        return QFontMetrics(self.font).height()

    def set_texts(self, texts: list[list[str]], light: np.ndarray) -> None:
        self.prepareGeometryChange()
        self._texts, self._light = texts, np.asarray(light, dtype=bool)
        self.update()

    def shown_text(self, row: int, col: int) -> str:
        return self._texts[row][col]

    def boundingRect(self) -> QRectF:
        rows = len(self._texts)
        return QRectF(0, 0, len(self._texts[0]) if rows else 0, rows)

    def paint(self, painter, option, widget=None) -> None:
        if not self._texts:
            return
        to_device = painter.transform()
        cell = to_device.mapRect(QRectF(0, 0, 1, 1))
        if cell.width() < MIN_CELL_PX or cell.height() < self.row_px:
            return
        shown = option.exposedRect  # in cells
        painter.resetTransform()  # text in device pixels, not stretched with the cells
        painter.setFont(self.font)
        metrics = painter.fontMetrics()
        rows, cols = len(self._texts), len(self._texts[0])
        for row in range(max(0, int(shown.top())), min(rows, int(shown.bottom()) + 1)):
            for col in range(max(0, int(shown.left())), min(cols, int(shown.right()) + 1)):
                rect = to_device.mapRect(QRectF(col, row, 1, 1))
                text = metrics.elidedText(
                    self._texts[row][col], Qt.TextElideMode.ElideRight, int(rect.width()) - 4
                )
                painter.setPen(LIGHT_TEXT if self._light[row, col] else DARK_TEXT)
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
