"""Heatmaps drawn with QPainter to PNG (QImage) and SVG (QSvgGenerator): one painting
routine for both formats, used by the window and by the headless `export` command.

A figure has a title naming what it shows, token labels on both axes and a colour bar.
A layer's grid of heads shares one colour scale, so heads can be compared by eye.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QBuffer, QIODevice, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QImage,
    QPainter,
    QPen,
    QTextLayout,
    QTextOption,
)
from PySide6.QtSvg import QSvgGenerator

from explorer.export.colour_maps import NON_FINITE_RGBA, lookup_table, value_levels
from gpt_core import ExportError
from gpt_core.util.atomic import write_bytes_atomic

_FONT_PT = 9
_TITLE_PT = 11
_PAD = 8
_BAR_WIDTH = 14
_VECTOR_CELLS = 64 * 64  # up to this many cells are drawn as SVG rectangles, else as an image
TITLE_LINES = 3  # a longer title is elided on its third line (the metadata has all of it)


@dataclass(frozen=True)
class HeatmapFigure:
    matrix: np.ndarray  # [rows, cols]
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    title: str
    row_axis: str = "query token"
    col_axis: str = "key token"
    signed: bool = False


def cell_size(rows: int, cols: int) -> int:
    return max(4, min(28, 720 // max(rows, cols, 1)))


def _fonts() -> tuple[QFont, QFont]:
    font = QFont("DejaVu Sans")
    font.setPointSize(_FONT_PT)
    title = QFont(font)
    title.setPointSize(_TITLE_PT)
    title.setBold(True)
    return font, title


class _Layout:
    """Where everything goes for a grid of panels (1 x 1 for a single heatmap)."""

    def __init__(self, figures: list[HeatmapFigure], title: str, columns: int, label_axes: bool):
        self.figures, self.title, self.columns = figures, title, columns
        self.rows_of_panels = math.ceil(len(figures) / columns)
        rows, cols = figures[0].matrix.shape
        self.cell = (
            cell_size(rows, cols) if len(figures) == 1 else max(2, cell_size(rows, cols) // 2)
        )
        font, title_font = _fonts()
        metrics = QFontMetrics(font)
        self.line = metrics.height()
        self.label_axes = label_axes
        longest_row = max((metrics.horizontalAdvance(s) for s in figures[0].row_labels), default=0)
        longest_col = max((metrics.horizontalAdvance(s) for s in figures[0].col_labels), default=0)
        self.left = (longest_row + self.line + 2 * _PAD) if label_axes else _PAD
        self.bottom = (longest_col + self.line + 2 * _PAD) if label_axes else _PAD
        self.panel_w, self.panel_h = cols * self.cell, rows * self.cell
        self.panel_title_h = self.line + 4 if len(figures) > 1 else 0
        self.block_w = self.left + self.panel_w + _PAD
        self.block_h = self.panel_title_h + self.panel_h + self.bottom
        self.bar_w = _BAR_WIDTH + metrics.horizontalAdvance("-0.000000") + 3 * _PAD
        self.width = self.columns * self.block_w + self.bar_w
        # A title wider than the figure wraps (its last line elided): the file's metadata
        # keeps the whole text.
        self.title_lines = wrapped_lines(title, title_font, self.width - 2 * _PAD)
        self.title_line_h = QFontMetrics(title_font).height()
        self.title_h = max(len(self.title_lines), 1) * self.title_line_h + _PAD
        self.height = self.title_h + self.rows_of_panels * self.block_h + _PAD

    def panel_origin(self, index: int) -> QPointF:
        r, c = divmod(index, self.columns)
        return QPointF(
            c * self.block_w + self.left, self.title_h + r * self.block_h + self.panel_title_h
        )


def _paint(painter: QPainter, layout: _Layout, levels: tuple[float, float], signed: bool) -> None:
    font, title_font = _fonts()
    painter.fillRect(QRectF(0, 0, layout.width, layout.height), QColor("white"))
    painter.setPen(QColor("#111"))
    painter.setFont(title_font)
    for index, line in enumerate(layout.title_lines):
        painter.drawText(
            QRectF(
                _PAD,
                _PAD / 2 + index * layout.title_line_h,
                layout.width - 2 * _PAD,
                layout.title_line_h,
            ),
            Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
            line,
        )
    lut = lookup_table(signed)  # [256, 3] uint8
    low, high = levels
    scale = 255.0 / (high - low) if high > low else 0.0
    for index, fig in enumerate(layout.figures):
        origin = layout.panel_origin(index)
        codes = np.clip((np.nan_to_num(fig.matrix) - low) * scale, 0, 255).astype(np.uint8)
        rows, cols = fig.matrix.shape
        cell = layout.cell
        if len(layout.figures) > 1:
            painter.setFont(font)
            painter.setPen(QColor("#111"))
            painter.drawText(
                QRectF(
                    origin.x(),
                    origin.y() - layout.panel_title_h,
                    layout.panel_w,
                    layout.panel_title_h,
                ),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                QFontMetrics(font).elidedText(
                    fig.title, Qt.TextElideMode.ElideRight, int(layout.panel_w)
                ),
            )
        rgb = lut[codes]  # [rows, cols, 3]
        rgb[~np.isfinite(fig.matrix)] = NON_FINITE_RGBA[:3]  # NaN/Inf as in the window
        if rows * cols <= _VECTOR_CELLS:
            painter.setPen(Qt.PenStyle.NoPen)
            for r in range(rows):
                for c in range(cols):
                    red, green, blue = rgb[r, c]
                    painter.fillRect(
                        QRectF(origin.x() + c * cell, origin.y() + r * cell, cell, cell),
                        QColor(int(red), int(green), int(blue)),
                    )
        else:
            rgb = np.ascontiguousarray(rgb)
            image = QImage(rgb.data, cols, rows, 3 * cols, QImage.Format.Format_RGB888)
            painter.drawImage(QRectF(origin.x(), origin.y(), cols * cell, rows * cell), image)
        if layout.label_axes:
            _axis_labels(painter, font, fig, origin, cell, layout)
    _colour_bar(painter, font, layout, lut, levels)


def wrapped_lines(text: str, font: QFont, width: float, most: int = TITLE_LINES) -> list[str]:
    """`text` broken into lines no wider than `width` (between words, or inside a word
    longer than a line), at most `most` of them, the last elided with "…" if text is left."""
    layout = QTextLayout(text, font)
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    layout.setTextOption(option)
    layout.beginLayout()
    starts = []
    while (line := layout.createLine()).isValid():
        line.setLineWidth(width)
        starts.append(line.textStart())
    layout.endLayout()
    ends = [*starts[1:], len(text)]
    lines = [text[a:b].strip() for a, b in zip(starts, ends, strict=True)]
    if len(lines) > most:
        rest = text[starts[most - 1] :].strip()
        elided = QFontMetrics(font).elidedText(rest, Qt.TextElideMode.ElideRight, int(width))
        lines = [*lines[: most - 1], elided]
    return lines


def _axis_labels(painter, font, fig: HeatmapFigure, origin: QPointF, cell: float, layout) -> None:
    painter.setFont(font)
    painter.setPen(QColor("#222"))
    rows, cols = fig.matrix.shape
    line = layout.line
    step = max(1, math.ceil(line / cell))  # thin labels that would overlap
    for r in range(0, rows, step):
        painter.drawText(
            QRectF(
                origin.x() - layout.left + line + _PAD,
                origin.y() + r * cell + cell / 2 - line / 2,
                layout.left - line - 2 * _PAD,
                line,
            ),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            fig.row_labels[r],
        )
    for c in range(0, cols, step):
        painter.save()
        painter.translate(
            origin.x() + c * cell + cell / 2 + line / 2, origin.y() + rows * cell + _PAD / 2
        )
        painter.rotate(90)
        painter.drawText(
            QRectF(0, 0, layout.bottom - line - _PAD, line),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            fig.col_labels[c],
        )
        painter.restore()
    painter.save()  # axis names
    painter.drawText(
        QRectF(
            origin.x(),
            origin.y() + rows * cell + layout.bottom - line - _PAD / 2,
            cols * cell,
            line,
        ),
        Qt.AlignmentFlag.AlignHCenter,
        fig.col_axis,
    )
    painter.translate(origin.x() - layout.left + _PAD / 2, origin.y() + rows * cell)
    painter.rotate(-90)
    painter.drawText(QRectF(0, 0, rows * cell, line), Qt.AlignmentFlag.AlignHCenter, fig.row_axis)
    painter.restore()


def _colour_bar(painter, font, layout: _Layout, lut: np.ndarray, levels) -> None:
    x = layout.width - layout.bar_w + _PAD
    top = layout.title_h + layout.panel_title_h
    height = max(layout.panel_h, 60)
    steps = 64
    painter.setPen(Qt.PenStyle.NoPen)
    for i in range(steps):
        red, green, blue = lut[int(255 * (steps - 1 - i) / (steps - 1))]
        painter.fillRect(
            QRectF(x, top + i * height / steps, _BAR_WIDTH, height / steps + 0.5),
            QColor(int(red), int(green), int(blue)),
        )
    painter.setPen(QPen(QColor("#222")))
    painter.setFont(font)
    low, high = levels
    for fraction in (0.0, 0.5, 1.0):
        value = high - fraction * (high - low)
        y = top + fraction * height
        painter.drawLine(QPointF(x + _BAR_WIDTH, y), QPointF(x + _BAR_WIDTH + 3, y))
        painter.drawText(
            QRectF(x + _BAR_WIDTH + 5, y - layout.line / 2, layout.bar_w, layout.line),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            f"{value:.4g}",
        )


_headless_application: list[QGuiApplication] = []  # kept alive while the commands draw


def painting_application() -> QGuiApplication:
    """Painting text needs a QGuiApplication (the window has one already); a headless
    command gets one, drawing offscreen when there is no display."""
    if QGuiApplication.instance() is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _headless_application.append(QGuiApplication([]))
    return QGuiApplication.instance()


def save_figure(
    path: str | Path,
    figures: list[HeatmapFigure],
    title: str = "",
    columns: int = 1,
    label_axes: bool = True,
    description: str = "",
) -> Path:
    """Write one heatmap, or a grid of them sharing a colour scale, as .png or .svg.
    `description` (default: the title) goes into the file's metadata, whole."""
    painting_application()
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in (".png", ".svg"):
        raise ExportError(f"{path.name}: images are written as .png or .svg")
    figures = [_printable_figure(f) for f in figures]
    layout = _Layout(figures, _printable(title or figures[0].title), columns, label_axes)
    signed = any(f.signed for f in figures)
    stacked = np.concatenate([f.matrix.ravel() for f in figures])
    levels = value_levels(stacked, signed)
    # Qt's own file writes do not report a full disk: Python writes the bytes, checked.
    about = _printable(description or layout.title)
    return write_bytes_atomic(path, _render(fmt, layout, levels, signed, about), ExportError)


def _render(
    fmt: str, layout: _Layout, levels: tuple[float, float], signed: bool, description: str
) -> bytes:
    """The image's bytes, its whole title and description in its metadata (PNG text chunks
    Title and Description; SVG <title> and <desc>)."""
    size = QSize(int(layout.width), int(layout.height))
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if fmt == ".png":
        image = QImage(size, QImage.Format.Format_RGB32)
        image.setText("Title", layout.title)
        image.setText("Description", description)
        painter = QPainter(image)
        _paint(painter, layout, levels, signed)
        painter.end()
        if not image.save(buffer, "PNG"):
            raise ExportError("the PNG image could not be encoded")
    else:
        generator = QSvgGenerator()
        generator.setOutputDevice(buffer)
        generator.setSize(size)
        generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
        generator.setTitle(layout.title)
        generator.setDescription(description)
        painter = QPainter(generator)
        _paint(painter, layout, levels, signed)
        painter.end()
    return bytes(buffer.data())


def _printable_figure(figure: HeatmapFigure) -> HeatmapFigure:
    return replace(
        figure,
        title=_printable(figure.title),
        row_labels=tuple(map(_printable, figure.row_labels)),
        col_labels=tuple(map(_printable, figure.col_labels)),
        row_axis=_printable(figure.row_axis),
        col_axis=_printable(figure.col_axis),
    )


def _printable(text: str) -> str:
    """Control characters (ESC, NUL, ...) as \\x escapes, as the token labels show them:
    XML cannot hold them, and an image would draw them as boxes."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
