"""A layer's attention heads as small heatmaps on one colour scale, with one colour bar
serving every image. A click opens a head; Ctrl+click switches it off or on."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QApplication

from .heatmap import colormap, value_levels

_OFF_PEN = pg.mkPen("#c92a2a", width=3)
_SELECTED_PEN = pg.mkPen("#e8590c", width=3)


def ctrl_held() -> bool:
    return bool(QApplication.keyboardModifiers() & Qt.KeyboardModifier.ControlModifier)


class HeadGrid(pg.GraphicsLayoutWidget):
    headClicked = Signal(int)
    headToggled = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.boxes: list[pg.ViewBox] = []
        self.images: list[pg.ImageItem] = []
        self.titles: list[pg.LabelItem] = []
        self.frames: list[pg.QtWidgets.QGraphicsRectItem] = []
        self.colorbar: pg.ColorBarItem | None = None
        self.scene().sigMouseClicked.connect(self._on_click)

    def _build(self, n_heads: int) -> None:
        self.clear()
        self.boxes, self.images, self.titles, self.frames = [], [], [], []
        columns = int(np.ceil(np.sqrt(n_heads)))
        for h in range(n_heads):
            r, c = divmod(h, columns)
            title = self.addLabel(f"H{h}", row=2 * r, col=c, size="8pt", color="#333")
            box = self.addViewBox(row=2 * r + 1, col=c, lockAspect=True, enableMouse=False)
            box.invertY(True)
            box.setMenuEnabled(False)
            image = pg.ImageItem(axisOrder="row-major")
            box.addItem(image)
            frame = pg.QtWidgets.QGraphicsRectItem()
            frame.setBrush(pg.mkBrush(None))
            box.addItem(frame)
            self.boxes.append(box)
            self.images.append(image)
            self.titles.append(title)
            self.frames.append(frame)
        self.colorbar = pg.ColorBarItem(colorMap=colormap(False), interactive=False, width=10)
        self.colorbar.setImageItem(self.images)  # one scale for every head
        rows = int(np.ceil(n_heads / columns))
        self.addItem(self.colorbar, row=0, col=columns, rowspan=2 * rows)

    def set_layer(self, weights: np.ndarray) -> None:
        """weights [H, T, T]; all heads on one colour scale, 0..max."""
        n_heads, T = weights.shape[0], weights.shape[-1]
        if len(self.images) != n_heads:
            self._build(n_heads)
        levels = value_levels(weights, signed=False)
        for h in range(n_heads):
            self.images[h].setImage(weights[h], autoLevels=False)
            self.images[h].setRect(0, 0, T, T)
            self.frames[h].setRect(0, 0, T, T)
            self.boxes[h].setRange(xRange=(0, T), yRange=(0, T), padding=0.02)
        self.colorbar.setLevels(levels)

    def mark_heads(self, selected: int, off: set[int]) -> None:
        """Frame and title the selected head and the switched-off ones."""
        for h, (frame, title) in enumerate(zip(self.frames, self.titles, strict=True)):
            pen = _OFF_PEN if h in off else (_SELECTED_PEN if h == selected else pg.mkPen(None))
            frame.setPen(pen)
            label = f"H{h} · off" if h in off else f"H{h}"
            color = "#c92a2a" if h in off else ("#e8590c" if h == selected else "#333")
            title.setText(label, color=color, size="8pt", bold=h == selected)

    def head_at(self, scene_pos) -> int | None:
        for h, box in enumerate(self.boxes):
            if box.sceneBoundingRect().contains(scene_pos):
                return h
        return None

    def _on_click(self, event) -> None:
        head = self.head_at(event.scenePos())
        if head is None or event.button() != Qt.MouseButton.LeftButton:
            return
        if ctrl_held():
            self.headToggled.emit(head)
        else:
            self.headClicked.emit(head)
