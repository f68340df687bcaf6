"""A layer's attention heads as small heatmaps on one colour scale, with one colour bar
serving every image, in as many columns as make the thumbnails largest in the room there
is (a 16- or 25-head layer wraps into rows). A click opens a head; Ctrl+click switches it
off or on."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal

from explorer.ui.widgets.colour_scale import scaled
from explorer.ui.widgets.heatmap import colormap

THUMB_MIN_PX = 44  # a thumbnail smaller than this shows no pattern
TITLE_PX = 16  # the "H3" line above each thumbnail
ROW_SPACING_PX = 10  # pyqtgraph's spacing between a title, its thumbnail and the next row
MARGINS_PX = 20  # the layout's margins above and below
COLORBAR_PX = 60  # the shared colour bar and its labels, right of the thumbnails
_OFF_PEN = pg.mkPen("#c92a2a", width=3)
_SELECTED_PEN = pg.mkPen("#e8590c", width=3)


def grid_columns(n_heads: int, width: float, height: float) -> int:
    """The number of columns that makes n_heads square thumbnails largest in width x height."""

    def thumb(columns: int) -> float:  # what a row costs besides its thumbnail counted
        rows = int(np.ceil(n_heads / columns))
        across = width / columns - ROW_SPACING_PX
        return min(across, (height - MARGINS_PX) / rows - TITLE_PX - ROW_SPACING_PX)

    return max(range(1, n_heads + 1), key=lambda c: (thumb(c), -c))


class HeadGrid(pg.GraphicsLayoutWidget):
    headClicked = Signal(int)
    headToggled = Signal(int)
    min_plot_px = (THUMB_MIN_PX, THUMB_MIN_PX)  # each thumbnail's least size (it sizes itself)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.boxes: list[pg.ViewBox] = []
        self.images: list[pg.ImageItem] = []
        self.titles: list[pg.LabelItem] = []
        self.frames: list[pg.QtWidgets.QGraphicsRectItem] = []
        self.colorbar: pg.ColorBarItem | None = None
        self.columns = 0
        self._marks: tuple[int, set[int]] = (0, set())  # selected head, heads off
        self.colour_scale = "fixed"  # a key of colour_scale.SCALES, as the large heatmap
        self.weights = np.zeros((0, 0, 0), dtype=np.float32)  # [H, T, T]
        self.scene().sigMouseClicked.connect(self._on_click)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        n_heads = len(getattr(self, "images", ()))  # pyqtgraph resizes during __init__
        if n_heads:  # after the resize: a new minimum within it leaves the viewport stale
            QTimer.singleShot(0, self, lambda: self._keep_thumbnails_readable(n_heads))
        if n_heads and self._columns_for(n_heads) != self.columns:
            self._build(n_heads)
            self._draw()
            self.mark_heads(*self._marks)

    def _keep_thumbnails_readable(self, n_heads: int) -> None:
        """Tall enough for the rows that THUMB_MIN_PX thumbnails need at this width (the
        columns follow the room, so a height that fits one row would squeeze them)."""
        per_row = (self.width() - COLORBAR_PX) // (THUMB_MIN_PX + ROW_SPACING_PX)
        rows = int(np.ceil(n_heads / max(1, min(per_row, n_heads))))
        height = rows * (THUMB_MIN_PX + TITLE_PX + ROW_SPACING_PX) + MARGINS_PX
        if height != self.minimumHeight():
            self.setMinimumHeight(height)

    def _columns_for(self, n_heads: int) -> int:
        return grid_columns(n_heads, max(self.width() - COLORBAR_PX, 1), max(self.height(), 1))

    def _build(self, n_heads: int) -> None:
        self.clear()
        self.boxes, self.images, self.titles, self.frames = [], [], [], []
        self._keep_thumbnails_readable(n_heads)
        columns = self.columns = self._columns_for(n_heads)
        rows = int(np.ceil(n_heads / columns))
        for h in range(n_heads):
            r, c = divmod(h, columns)
            title = self.addLabel(f"H{h}", row=2 * r, col=c, size="8pt", color="#333")
            title.setMaximumHeight(TITLE_PX)  # the room goes to the thumbnails
            box = self.addViewBox(row=2 * r + 1, col=c, lockAspect=True, enableMouse=False)
            box.invertY(True)
            box.setMenuEnabled(False)
            image = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
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
        self.addItem(self.colorbar, row=0, col=columns, rowspan=2 * rows)

    def set_layer(self, weights: np.ndarray) -> None:
        """weights [H, T, T]; all heads on one colour scale."""
        self.weights = weights
        if len(self.images) != weights.shape[0]:
            self._build(weights.shape[0])
        self._draw()

    def set_colour_scale(self, scale: str) -> None:
        self.colour_scale = scale
        self._draw()

    def _draw(self) -> None:
        if not self.images:
            return
        n_heads, T = self.weights.shape[0], self.weights.shape[-1]
        weights, levels = scaled(self.weights, self.weights, self.colour_scale)  # [H, T, T]
        for h in range(n_heads):
            self.images[h].setImage(weights[h], autoLevels=False)
            self.images[h].setRect(0, 0, T, T)
            self.frames[h].setRect(0, 0, T, T)
            self.boxes[h].setRange(xRange=(0, T), yRange=(0, T), padding=0.02)
        self.colorbar.setLevels(levels)

    def mark_heads(self, selected: int, off: set[int]) -> None:
        """Frame and title the selected head and the switched-off ones."""
        self._marks = (selected, set(off))
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
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.headToggled.emit(head)
        else:
            self.headClicked.emit(head)
