"""The prompt's tokens as chips that wrap like text: display string and id on each; hover
tells id, bytes and position; a click selects that position in every view. Chips can be
tinted by a weight per token (a saliency strip): red for a size, or blue-white-red around 0
for signed scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QScrollArea, QSizePolicy, QToolTip, QWidget

from explorer.ui.widgets.heatmap import colormap

_GAP = 4
_PAD_X = 5
_PAD_Y = 2
SIGNED_REACH = 0.38  # how far from the diverging map's white centre the tints go


class TokenStrip(QWidget):
    positionClicked = Signal(int)
    heightChanged = Signal(int)  # the chips' height at the strip's width, after each layout

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self._label_font = QFont(self.font())
        self._id_font = QFont(self.font())
        self._id_font.setPointSizeF(max(6.0, self.font().pointSizeF() * 0.75))
        self.tokens: list[str] = []
        self.ids: list[int] = []
        self.token_bytes: list[bytes] = []
        self.notes: list[str] = []  # the small second line of each chip: its id
        self.weights: np.ndarray | None = None  # per-token tint, 0..1 (−1..1 if signed)
        self.signed = False
        self.marked: set[int] = set()  # positions drawn with a dashed outline (generated)
        self.selected: int | None = None
        self._rects: list[QRect] = []
        self._height = 0

    def set_tokens(
        self,
        tokens: Sequence[str],
        ids: Sequence[int],
        token_bytes: Sequence[bytes],
        marked: set[int] | None = None,
    ) -> None:
        self.tokens, self.ids, self.token_bytes = list(tokens), list(ids), list(token_bytes)
        self.notes = [str(i) for i in self.ids]
        self.marked = marked or set()
        self.weights = None
        self._relayout()

    def set_weights(self, weights: np.ndarray | None, signed: bool = False) -> None:
        """Tint each chip by a weight, normalised to the largest magnitude (signed: by sign
        and size, centred on 0); None removes the tint. NaN chips stay untinted."""
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            finite = np.abs(weights[np.isfinite(weights)])
            peak = finite.max() if finite.size else 0.0
            weights = weights if signed else np.abs(weights)
            weights = weights / peak if peak > 0 else np.zeros_like(weights)
        self.weights, self.signed = weights, signed
        self.update()

    def chip_fill(self, position: int) -> QColor:
        """The colour of a chip: its tint, or plain grey."""
        if self.weights is None or position >= len(self.weights):
            return QColor("#f1f3f5")
        w = float(self.weights[position])
        if not np.isfinite(w):
            return QColor("#f1f3f5")
        if self.signed:
            # the inner part of the map: its darkest ends would hide the chip's text
            return colormap(True).map(0.5 + SIGNED_REACH * w, mode="qcolor")
        return QColor.fromRgbF(1.0, 1.0 - 0.75 * w, 1.0 - 0.9 * w)

    def set_selected(self, position: int | None) -> None:
        self.selected = position
        self.update()

    def chip_rect(self, position: int) -> QRect:
        return self._rects[position]

    # --- layout ---
    def _chip_size(self, i: int) -> QSize:
        label = QFontMetrics(self._label_font).horizontalAdvance(self.tokens[i])
        ident = QFontMetrics(self._id_font).horizontalAdvance(self.notes[i])
        height = QFontMetrics(self._label_font).height() + QFontMetrics(self._id_font).height()
        return QSize(max(label, ident) + 2 * _PAD_X, height + 2 * _PAD_Y)

    def _relayout(self) -> None:
        width = max(self.width(), 200)
        x = y = _GAP
        row_height = 0
        self._rects = []
        for i in range(len(self.tokens)):
            size = self._chip_size(i)
            if x + size.width() > width - _GAP and x > _GAP:
                x, y = _GAP, y + row_height + _GAP
                row_height = 0
            self._rects.append(QRect(QPoint(x, y), size))
            x += size.width() + _GAP
            row_height = max(row_height, size.height())
        self._height = y + row_height + _GAP
        self.updateGeometry()
        self.update()
        self.heightChanged.emit(self._height)

    def resizeEvent(self, event) -> None:
        self._relayout()
        super().resizeEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(400, max(self._height, 30))

    def minimumSizeHint(self) -> QSize:
        return QSize(100, max(self._height, 30))

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return max(self._height, 30)

    # --- painting and pointer ---
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        label_h = QFontMetrics(self._label_font).height()
        for i, rect in enumerate(self._rects):
            if not rect.intersects(event.rect()):  # in its scroll area, most chips are out of view
                continue
            fill = self.chip_fill(i)
            pen = QPen(QColor("#adb5bd"))
            if i in self.marked:
                pen.setStyle(Qt.PenStyle.DashLine)
                pen.setColor(QColor("#1971c2"))
            if i == self.selected:
                pen = QPen(QColor("#e8590c"), 2)
            painter.setPen(pen)
            painter.setBrush(fill)
            painter.drawRoundedRect(rect, 4, 4)
            painter.setPen(QColor("#212529"))
            painter.setFont(self._label_font)
            painter.drawText(
                rect.adjusted(_PAD_X, _PAD_Y, -_PAD_X, 0),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                self.tokens[i],
            )
            painter.setPen(QColor("#868e96"))
            painter.setFont(self._id_font)
            painter.drawText(
                rect.adjusted(_PAD_X, _PAD_Y + label_h, -_PAD_X, 0),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                self.notes[i],
            )
        painter.end()

    def position_at(self, point: QPoint) -> int | None:
        for i, rect in enumerate(self._rects):
            if rect.contains(point):
                return i
        return None

    def describe(self, position: int) -> str:
        raw = " ".join(f"{b:02x}" for b in self.token_bytes[position])
        return (
            f"position {position}\nid {self.ids[position]}\n"
            f"token {self.tokens[position]}\nbytes {raw}"
        )

    def mouseMoveEvent(self, event) -> None:
        position = self.position_at(event.position().toPoint())
        if position is None:
            QToolTip.hideText()
        else:
            QToolTip.showText(event.globalPosition().toPoint(), self.describe(position), self)

    def mousePressEvent(self, event) -> None:
        position = self.position_at(event.position().toPoint())
        if position is not None and event.button() == Qt.MouseButton.LeftButton:
            self.positionClicked.emit(position)


def scrolled(strip: TokenStrip, max_height: int = 110) -> QScrollArea:
    """The strip in a frameless scroll area at most `max_height` px tall (three rows of
    chips): a 1,000-token prompt scrolls there instead of pushing everything below it out
    of the window."""
    area = QScrollArea()
    area.setWidget(strip)
    area.setWidgetResizable(True)
    area.setMaximumHeight(max_height)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area
