"""One weight matrix as a heatmap: diverging colours centred on 0, its shape, parameter
count, norm and downsampling in the title, the axes numbered in the full matrix's rows and
columns (round numbers, however many rows a cell stands for), and the selected head's
slice outlined."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QGraphicsRectItem

from explorer.ui.widgets.heatmap import Heatmap
from gpt_core.analysis.weight_matrices import HEAD_COLUMNS, WeightMatrix

OUTLINE_PEN = pg.mkPen("#2b8a3e", width=2, cosmetic=True)


def matrix_title(matrix: WeightMatrix) -> str:
    """ "W_query [768, 768] · 589,824 parameters · ‖W‖ = 27.7 · shown 1:1", then the
    model's name and how the matrix is turned, smaller."""
    rows, cols = matrix.shape
    return (
        f"<b>{matrix.entry.short_name}</b> [{rows:,}, {cols:,}] · "
        f"{matrix.n_parameters:,} parameters · ‖W‖ = {_norm_text(matrix.norm)} · "
        f"{matrix.scale_text().replace(' ', '&nbsp;')}<br>"
        "<span style='color:#495057; font-size:8pt'>"
        f"{matrix.parameter} · {matrix.entry.orientation()}</span>"
    )


def _norm_text(norm: float) -> str:
    """ "27.7", "6,213.3", "0.604": a tenth where that is three digits or more."""
    return f"{norm:,.1f}" if norm >= 10 else f"{norm:.3g}"


class WeightMatrixPlot(Heatmap):
    """show_matrix() draws a WeightMatrix; outline_head() marks a head's slice of it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.weights: WeightMatrix | None = None
        self.outline = QGraphicsRectItem()
        self.outline.setPen(OUTLINE_PEN)
        self.outline.setVisible(False)
        self.plot.addItem(self.outline)

    def show_matrix(self, matrix: WeightMatrix, head: int) -> None:
        self.weights = matrix
        self.set_matrix(
            matrix.cells,
            title=matrix_title(matrix),
            signed=True,
            hover=self._describe,
        )
        self.outline_head(head)

    def outline_head(self, head: int) -> None:
        """Outline head `head`'s columns (or rows) of the matrix; nothing if it has no heads."""
        span = None if self.weights is None else self.weights.cell_span(head)
        self.outline.setVisible(span is not None)
        if span is None:
            return
        axis, start, stop = span
        rows, cols = self.weights.cells.shape
        if axis == HEAD_COLUMNS:
            self.outline.setRect(QRectF(start, 0, stop - start, rows))
        else:
            self.outline.setRect(QRectF(0, start, cols, stop - start))

    def _apply_ticks(self) -> None:
        """pyqtgraph's round ticks, in the full matrix's rows and columns: a cell's edges
        are its first row and column times the downsampling factor."""
        if self.weights is None:
            return
        for name, factor in zip(("left", "bottom"), self.weights.factor, strict=True):
            axis = self.plot.getAxis(name)
            axis.setTicks(None)
            axis.setScale(factor)

    def outlined_cells(self) -> tuple[float, float, float, float] | None:
        """(left, top, right, bottom) of the outline in cells; None when there is none."""
        if not self.outline.isVisible():
            return None
        rect = self.outline.rect()
        return rect.left(), rect.top(), rect.right(), rect.bottom()

    def _describe(self, row: int, col: int, value: float) -> str:
        rows, cols = self.weights.cell_range(row, col)
        where = f"{_indices('row', rows)} × {_indices('column', cols)}"
        count = len(rows) * len(cols)
        return f"{where}: {value:.5g}" if count == 1 else f"{where}: mean of {count:,} {value:.5g}"


def _indices(noun: str, indices: range) -> str:
    """ "row 5" or "rows 66–131"."""
    if len(indices) == 1:
        return f"{noun} {indices[0]:,}"
    return f"{noun}s {indices[0]:,}–{indices[-1]:,}"
