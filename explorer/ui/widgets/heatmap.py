"""A heatmap: a row-major pyqtgraph ImageItem with a colour bar, token labels on the axes
(thinned to what fits the cells in view) and a hover read-out of the exact value under the
pointer; a highlighted row and a marked cell; optionally zoom and pan, and a choice of colour
scale (see colour_scale)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QAction, QFontMetrics
from PySide6.QtWidgets import QMenu

from explorer.export.colour_maps import NON_FINITE_RGBA, lookup_table, value_levels
from explorer.ui.widgets.axes import LABEL_GAP_PX, fixed_plot, style_axes, thinned_ticks
from explorer.ui.widgets.colour_scale import scaled
from explorer.ui.widgets.labels import FittingLabel

MASKED_RGBA = (206, 212, 218, 255)  # light grey: the causal mask's -inf, expected, not an error
CELL_MARK_PX = 11  # the marked cell's frame: visible however small the cells are

HoverFormatter = Callable[[int, int, float], str]


@cache  # one of each: building one costs milliseconds, and a click may redraw a heatmap
def colormap(signed: bool) -> pg.ColorMap:
    """The export's colour table as a pyqtgraph map: the window and the files agree."""
    table = lookup_table(signed)
    return pg.ColorMap(np.linspace(0.0, 1.0, len(table)), table)


class Heatmap(pg.GraphicsLayoutWidget):
    """set_matrix() draws; hovered/clicked/ctrlClicked report (row, column)."""

    hovered = Signal(int, int)  # row, column under the pointer
    clicked = Signal(int, int)  # row, column clicked
    ctrlClicked = Signal(int, int)  # row, column clicked with Ctrl held (instead of clicked)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.title_label = FittingLabel("", color="#222", size="10pt")
        self.addItem(self.title_label, row=0, col=0, colspan=2)
        self.plot = self.addPlot(row=1, col=0)
        fixed_plot(self.plot)
        style_axes(self.plot)
        for name in ("left", "bottom"):  # the first and last cells' labels reach past the ends
            self.plot.getAxis(name).setStyle(hideOverlappingLabels=False)
        self.plot.invertY(True)  # row 0 at the top, as in a matrix
        self.plot.getViewBox().setDefaultPadding(0.0)
        self.image = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.plot.addItem(self.image)
        self.non_finite = pg.ImageItem(axisOrder="row-major")  # NaN/Inf cells, on top
        self.plot.addItem(self.non_finite)
        self.colorbar = pg.ColorBarItem(colorMap=colormap(False), interactive=False, width=14)
        self.colorbar.setImageItem(self.image)
        self.addItem(self.colorbar, row=1, col=1)
        self.hover_label = FittingLabel("", color="#333", size="9pt", justify="left")
        self.addItem(self.hover_label, row=2, col=0, colspan=2)
        self._highlight = pg.InfiniteLine(angle=0, pen=pg.mkPen("#e8590c", width=2))
        self._highlight.setVisible(False)
        self.plot.addItem(self._highlight)
        self._cell_mark = pg.ScatterPlotItem(
            symbol="s", size=CELL_MARK_PX, pen=pg.mkPen("#212529", width=2), brush=None
        )
        self.plot.addItem(self._cell_mark)
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self._shape: tuple[int, int] = (0, 0)
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []
        # rows and columns whose labels always show (the selected position, the marked
        # cell, where two prompts differ), however thin the other labels are
        self.keep_rows: frozenset[int] = frozenset()
        self.keep_columns: frozenset[int] = frozenset()
        self.signed = False
        self.label_columns = True  # False: numbered columns with pyqtgraph's own round ticks
        self.colour_scale: str | None = None  # None: the data's range; else a key of SCALES
        self.zoomable = False
        self.hover_format: HoverFormatter = self._default_hover
        self._menu_actions: list[QAction] = []
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.square = False  # rows and columns the same positions: the cells stay square
        self._whole: tuple[tuple[float, float], tuple[float, float]] = ((0, 0), (0, 0))
        self.plot.getViewBox().sigResized.connect(self._resized)  # thin labels to fit
        self.plot.getViewBox().sigRangeChanged.connect(self._view_changed)

    # --- drawing ---
    def set_matrix(
        self,
        matrix: np.ndarray,
        row_labels: Sequence[str] | None = None,
        col_labels: Sequence[str] | None = None,
        *,
        title: str = "",
        signed: bool | None = None,
        hover: HoverFormatter | None = None,
        missing: str = "NaN/Inf",
        masked: bool = False,
    ) -> None:
        """Draw `matrix`; its NaN/Inf cells in magenta, which the title counts as `missing`.
        masked: they are the causal mask's -inf (scores before the softmax), light grey."""
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError(f"a heatmap needs a 2-D array, got shape {matrix.shape}")
        self.matrix = matrix
        rows, cols = matrix.shape
        self.row_labels = (
            list(row_labels) if row_labels is not None else [str(i) for i in range(rows)]
        )
        self.col_labels = (
            list(col_labels) if col_labels is not None else [str(i) for i in range(cols)]
        )
        self.signed = (
            bool(np.nanmin(matrix) < 0) if signed is None and matrix.size else bool(signed)
        )
        self.hover_format = hover or self._default_hover
        bad = ~np.isfinite(matrix)  # [rows, cols]
        self.non_finite.setVisible(bool(bad.any()))
        if bad.any():  # an overlay only where there is something to mark
            overlay = np.zeros((*matrix.shape, 4), dtype=np.uint8)
            overlay[bad] = MASKED_RGBA if masked else NON_FINITE_RGBA
            self.non_finite.setImage(overlay, autoLevels=False, levels=(0, 255))
            self.non_finite.setRect(0, 0, cols, rows)
            note = "grey: masked (−∞)" if masked else f"magenta: {int(bad.sum()):,} {missing}"
            title = f"{title} · {note}"
        self.colorbar.setColorMap(colormap(self.signed))
        self.title_label.setText(title)
        self.hover_label.setText("")
        box = self.plot.getViewBox()
        # a positions x positions map keeps square cells (the room left over stays white):
        # stretched 5:1 its diagonal and stripes read as something else
        self.square = row_labels is not None and self.row_labels == self.col_labels and rows > 1
        if self.square:  # the white margin right of or below the matrix is in view
            box.setLimits(xMin=0, xMax=None, yMin=0, yMax=None, minXRange=1, minYRange=1)
        else:
            box.setLimits(xMin=0, xMax=cols, yMin=0, yMax=rows, minXRange=1, minYRange=1)
        if not self.zoomable or (rows, cols) != self._shape:
            self._shape = (rows, cols)
            self.reset_zoom()  # a new shape: the whole matrix (else keep the zoom)
        self._draw_colours()
        self._apply_ticks()

    # --- colour scale, zoom and pan ---
    def set_colour_scale(self, scale: str | None) -> None:
        self.colour_scale = scale
        self._draw_colours()

    def enable_zoom(self) -> None:
        """Wheel zooms, dragging pans (or draws a box to zoom into, see box_zoom)."""
        self.zoomable = True
        self.plot.setMouseEnabled(x=True, y=True)

    def box_zoom(self, on: bool) -> None:
        box = self.plot.getViewBox()
        box.setMouseMode(box.RectMode if on else box.PanMode)

    def reset_zoom(self) -> None:
        """The whole matrix; a positions x positions one with square cells, from the top
        left corner (the room left over stays white)."""
        rows, cols = self.matrix.shape
        box = self.plot.getViewBox()
        width, height = box.width(), box.height()
        if self.square and width > 0 and height > 0:
            per_px = max(cols / width, rows / height)  # cells per pixel, the same both ways
            cols, rows = width * per_px, height * per_px
        self._whole = ((0, cols), (0, rows))
        self.plot.setRange(xRange=(0, cols), yRange=(0, rows), padding=0)

    def _resized(self) -> None:
        """Square cells at the new size, unless the person zoomed in."""
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        (a0, a1), (b0, b1) = self._whole
        if self.square and np.allclose((x0, x1, y0, y1), (a0, a1, b0, b1), atol=1e-6):
            self.reset_zoom()
        self._apply_ticks()

    def visible_cells(self) -> tuple[slice, slice]:
        """The rows and columns in view, as slices of the matrix."""
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        rows, cols = self.matrix.shape
        row_slice = slice(max(0, int(np.floor(y0))), min(rows, int(np.ceil(y1))))
        return row_slice, slice(max(0, int(np.floor(x0))), min(cols, int(np.ceil(x1))))

    def _draw_colours(self) -> None:
        """The image and colour bar on the chosen scale, for the part of the matrix in view."""
        if self.matrix.size == 0:
            return
        if self.colour_scale is None:
            image, levels = self.matrix, value_levels(self.matrix, self.signed)
        else:
            image, levels = scaled(
                self.matrix, self.matrix[self.visible_cells()], self.colour_scale
            )
        self.image.setImage(image, autoLevels=False, levels=levels)
        self.image.setRect(0, 0, self.matrix.shape[1], self.matrix.shape[0])
        self.colorbar.setLevels(levels)

    def _view_changed(self) -> None:
        self._apply_ticks()
        if self.colour_scale in ("auto", "log"):  # they follow what is in view
            self._draw_colours()

    def non_finite_cells(self) -> int:
        """How many cells are NaN or Inf (drawn magenta)."""
        return int((~np.isfinite(self.matrix)).sum())

    def set_highlight_row(self, row: int | None) -> None:
        self._highlight.setVisible(row is not None)
        if row is not None:
            self._highlight.setPos(row + 0.5)
        rows = () if row is None else (row,)
        # a T x T map: the row's position along the bottom too
        self.keep_labels(rows, rows if self.col_labels == self.row_labels else ())

    def mark_cell(self, cell: tuple[int, int] | None) -> None:
        """Frame the cell (row, column), or none."""
        if cell is None:
            self._cell_mark.setData([], [])
        else:
            self._cell_mark.setData([cell[1] + 0.5], [cell[0] + 0.5])
        rows, columns = ((), ()) if cell is None else ((cell[0],), (cell[1],))
        self.keep_labels((*self.keep_rows, *rows), (*self.keep_columns, *columns))

    def keep_labels(self, rows=(), columns=()) -> None:
        """Always label these rows and columns (the rest are thinned to fit)."""
        self.keep_rows, self.keep_columns = frozenset(rows), frozenset(columns)
        self._apply_ticks()

    @property
    def marked_cell(self) -> tuple[int, int] | None:
        x, y = self._cell_mark.getData()
        return (int(y[0] - 0.5), int(x[0] - 0.5)) if len(x) else None

    @property
    def highlighted_row(self) -> int | None:
        return int(self._highlight.value() - 0.5) if self._highlight.isVisible() else None

    def _apply_ticks(self) -> None:
        """As many labels of the rows and columns in view as fit without overlapping."""
        if not self.row_labels:
            return
        box = self.plot.getViewBox()
        (x0, x1), (y0, y1) = box.viewRange()
        metrics = QFontMetrics(self.plot.getAxis("left").font())
        rows = thinned_ticks(
            self.row_labels, (y0, y1), box.height(), metrics.height(), self.keep_rows
        )
        self.plot.getAxis("left").setTicks([rows])
        bottom = self.plot.getAxis("bottom")
        if not self.label_columns:
            bottom.setTicks(None)
            return
        widest = max(metrics.horizontalAdvance(s) for s in self.col_labels) + LABEL_GAP_PX
        columns = thinned_ticks(self.col_labels, (x0, x1), box.width(), widest, self.keep_columns)
        bottom.setTicks([columns])

    # --- pointer ---
    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        if not self.plot.sceneBoundingRect().contains(scene_pos) or self.matrix.size == 0:
            return None
        point = self.plot.getViewBox().mapSceneToView(scene_pos)
        row, col = int(np.floor(point.y())), int(np.floor(point.x()))
        if 0 <= row < self.matrix.shape[0] and 0 <= col < self.matrix.shape[1]:
            return row, col
        return None

    def describe_cell(self, row: int, col: int) -> str:
        return self.hover_format(row, col, float(self.matrix[row, col]))

    def _default_hover(self, row: int, col: int, value: float) -> str:
        return f"{self.row_labels[row]} × {self.col_labels[col]}: {value:.6g}"

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        cell = self.cell_at(scene_pos)
        if cell is None:
            return
        self.hover_label.setText(self.describe_cell(*cell))
        self.hovered.emit(*cell)

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at(event.scenePos())
        if cell is None:
            return
        # The click's own modifiers: the application's modifier state can lag behind.
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.ctrlClicked.emit(*cell)
        else:
            self.clicked.emit(*cell)

    # --- context menu ---
    def add_menu_action(self, text: str, callback: Callable[[], None]) -> QAction:
        action = QAction(text, self)
        action.triggered.connect(callback)
        self._menu_actions.append(action)
        return action

    def contextMenuEvent(self, event) -> None:
        if not self._menu_actions:
            return super().contextMenuEvent(event)
        menu = QMenu(self)
        menu.addActions(self._menu_actions)
        menu.exec(event.globalPos())


class TokensByDims(Heatmap):
    """A tokens x dims matrix (an activation or its gradient): signed colours centred on
    0, token labels down the side, round dimension numbers along the bottom, the selected
    token marked."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label_columns = False  # dims: pyqtgraph's own round ticks fit better

    def set_tokens_dims(
        self,
        matrix: np.ndarray,
        token_labels: Sequence[str],
        title: str,
        position: int | None,
        hover: HoverFormatter | None = None,
    ) -> None:
        """matrix [T, D]; the title gets the size appended."""
        rows, dims = matrix.shape
        self.set_matrix(
            matrix,
            token_labels,
            [str(d) for d in range(dims)],
            signed=True,
            title=f"{title} · {rows} tokens × {dims} dims",
            hover=hover,
        )
        self.set_highlight_row(position)
