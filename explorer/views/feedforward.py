"""Feed-forward network of one block: pre-GELU against GELU output over the GELU curve,
histograms of both, and the most active hidden units: the top 10 for the selected token
as a table, and the units most active anywhere in the prompt as a tokens x units heatmap
(click a token row to select it)."""

from __future__ import annotations

import functools

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QFontMetrics, QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..steps import Step
from ..widgets.heatmap import Heatmap
from .base import StageView

MAX_POINTS = 20_000  # scatter points drawn; more makes every redraw slow
HISTOGRAM_BINS = 100
TOP_UNITS_PER_TOKEN = 10  # rows of the selected token's table
TOP_UNITS_IN_PROMPT = 64  # heatmap columns
CURVE_POINTS = 400
_MAX_OVERLAP = 64  # dots on one pixel beyond which it is fully opaque anyway

_PRE_COLOR = (51, 102, 204)
_GELU_COLOR = (232, 89, 12)
_CURVE_COLOR = "#c92a2a"


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU, the tanh approximation GPT-2 uses."""
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


@functools.lru_cache(maxsize=8)
def sample_indices(n: int, limit: int) -> np.ndarray:
    """Up to `limit` flat indices into n values: a fixed random sample (a stride would
    alias with the hidden units' layout), sorted, the same every time for the same n."""
    if n <= limit:
        indices = np.arange(n)
    else:
        indices = np.sort(np.random.default_rng(0).choice(n, limit, replace=False))
    indices.flags.writeable = False
    return indices


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

    def setData(self, x: np.ndarray, y: np.ndarray) -> None:  # noqa: N802 - pyqtgraph's name
        self.prepareGeometryChange()
        self.x, self.y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self._bounds = QRectF()
        if self.x.size:
            low_x, low_y = self.x.min(), self.y.min()
            self._bounds = QRectF(low_x, low_y, self.x.max() - low_x, self.y.max() - low_y)
        self.informViewBoundsChanged()
        self.update()

    def getData(self) -> tuple[np.ndarray, np.ndarray]:  # noqa: N802 - pyqtgraph's name
        return self.x, self.y

    def clear(self) -> None:
        self.setData(np.zeros(0), np.zeros(0))

    # pyqtgraph's auto-range asks for the data's extent and the dots' size in pixels
    def dataBounds(self, axis, frac=1.0, orthoRange=None):  # noqa: N802, N803
        if not self.x.size:
            return None, None
        values = self.x if axis == 0 else self.y
        return float(values.min()), float(values.max())

    def pixelPadding(self) -> float:  # noqa: N802
        return self.size

    def viewTransformChanged(self) -> None:  # noqa: N802
        self.prepareGeometryChange()  # the padding below is in pixels: it follows the zoom

    def boundingRect(self) -> QRectF:  # noqa: N802
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


def most_active_units(gelu: np.ndarray, count: int) -> np.ndarray:
    """The `count` units with the largest GELU output anywhere, strongest first."""
    peak = gelu.max(axis=0)  # [4E]
    return np.argsort(-peak, kind="stable")[:count]


def _plot(x_label: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.2)
    for name in ("left", "bottom"):
        plot.getAxis(name).setPen("#444")
        plot.getAxis(name).setTextPen("#222")
    return plot


def _panel(*widgets: QWidget) -> QWidget:
    panel = QWidget()
    layout = QVBoxLayout(panel)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    for widget in widgets:
        layout.addWidget(widget, 0 if isinstance(widget, QLabel) else 1)
    return panel


def _caption() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet("color: #495057;")
    return label


class FeedForwardView(StageView):
    kinds = ("ff",)

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self._drawn: tuple[object, int] | None = None  # (trace, block) the plots show

        self.scatter_plot = _plot("pre-GELU h", "GELU(h)")
        self.curve = pg.PlotDataItem(pen=pg.mkPen(_CURVE_COLOR, width=1.5))
        self.points = PointCloud(_PRE_COLOR, alpha=0.5)
        for item in (self.curve, self.points):
            self.scatter_plot.addItem(item)
        self.scatter_caption = _caption()
        self.scatter_caption.setTextFormat(Qt.TextFormat.RichText)

        # The colours are named in the axis title, not in a legend that would cover the bars.
        self.histogram_plot = _plot(
            f"<span style='color:{_hex(_PRE_COLOR)}'>pre-GELU</span> · "
            f"<span style='color:{_hex(_GELU_COLOR)}'>GELU</span>",
            "count",
        )
        self.pre_hist = pg.PlotDataItem(
            stepMode="center",
            fillLevel=0,
            pen=pg.mkPen(_PRE_COLOR, width=1.5),
            brush=pg.mkBrush(*_PRE_COLOR, 60),
        )
        self.gelu_hist = pg.PlotDataItem(
            stepMode="center",
            fillLevel=0,
            pen=pg.mkPen(_GELU_COLOR, width=1.5),
            brush=pg.mkBrush(*_GELU_COLOR, 60),
        )
        self.histogram_plot.addItem(self.pre_hist)
        self.histogram_plot.addItem(self.gelu_hist)

        self.heatmap = Heatmap()
        self.heatmap.plot.setLabel("bottom", "hidden unit")
        self.heatmap.clicked.connect(lambda row, col: self.session.select_position(row))
        self.heatmap_caption = _caption()

        self.units_title = QLabel()
        self.units_title.setTextFormat(Qt.TextFormat.PlainText)  # tokens may contain "<"
        self.units_title.setWordWrap(True)
        self.units_title.setStyleSheet("font-weight: 600;")
        self.units_table = QTableWidget(0, 3)
        self.units_table.setHorizontalHeaderLabels(["unit", "pre-GELU", "GELU"])
        self.units_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.units_table.verticalHeader().setDefaultSectionSize(22)
        self.units_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        # room for "unit", "pre-GELU" and "GELU" numbers side by side without eliding them
        self.units_table.setMinimumWidth(QFontMetrics(self.font()).horizontalAdvance("0" * 26))

        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(_panel(self.scatter_caption, self.scatter_plot))
        plots.addWidget(self.histogram_plot)
        plots.setStretchFactor(0, 3)
        plots.setStretchFactor(1, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(plots)
        split.addWidget(_panel(self.heatmap_caption, self.heatmap))
        split.addWidget(_panel(self.units_title, self.units_table))
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 4)
        split.setStretchFactor(2, 2)
        split.setSizes([260, 400, 220])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    # --- drawing ---
    def draw(self, step: Step) -> None:
        trace, layer = self.trace, step.layer
        pre = trace[f"blocks/{layer}/ff/pre_gelu"]  # [T, 4E]
        gelu = trace[f"blocks/{layer}/ff/gelu"]  # [T, 4E]
        if self._drawn is None or self._drawn[0] is not trace or self._drawn[1] != layer:
            self._draw_distribution(pre, gelu)
            self._draw_prompt_units(pre, gelu, layer)
            self._drawn = (trace, layer)
        self._draw_position(pre, gelu)

    def _draw_distribution(self, pre: np.ndarray, gelu: np.ndarray) -> None:
        """Scatter over the curve and both histograms: they depend on the run, not on the
        selected token."""
        flat_pre, flat_gelu = pre.ravel(), gelu.ravel()  # [T * 4E]
        shown = sample_indices(flat_pre.size, MAX_POINTS)
        self.points.setData(flat_pre[shown], flat_gelu[shown])
        low, high = float(flat_pre.min()), float(flat_pre.max())
        x = np.linspace(low, high, CURVE_POINTS)
        self.curve.setData(x, gelu_tanh(x))
        sampled = " (a fixed random sample)" if shown.size < flat_pre.size else ""
        # Colours named in the caption: a legend would cover the curve on a plot this narrow.
        self.scatter_caption.setText(
            f"<span style='color:{_hex(_PRE_COLOR)}'>{shown.size:,} of {flat_pre.size:,} "
            f"values shown</span>{sampled} on the "
            f"<span style='color:{_CURVE_COLOR}'>GELU curve</span>"
        )
        # One range and equal bins for both: np.histogram's fast path (no sort).
        span = (min(low, float(flat_gelu.min())), max(high, float(flat_gelu.max())))
        counts, edges = np.histogram(flat_pre, HISTOGRAM_BINS, span)
        self.pre_hist.setData(edges, counts)
        self.gelu_hist.setData(edges, np.histogram(flat_gelu, HISTOGRAM_BINS, span)[0])

    def _draw_prompt_units(self, pre: np.ndarray, gelu: np.ndarray, layer: int) -> None:
        units = most_active_units(gelu, TOP_UNITS_IN_PROMPT)  # [U]
        tokens = self.trace.token_strings
        self.heatmap.set_matrix(
            gelu[:, units],  # [T, U]
            self.labels(),
            [str(u) for u in units],
            signed=False,  # GELU output is >= -0.17: a diverging scale would waste its half
            title=f"Block {layer} · GELU of the top {units.size} units",
            hover=lambda r, c, v: (
                f"token {r} “{tokens[r]}” · unit {units[c]}: GELU {v:.4f} "
                f"(pre-GELU {pre[r, units[c]]:.4f})"
            ),
        )
        self.heatmap_caption.setText(
            "Units by their largest GELU output in the prompt, strongest first; "
            "click a row to select that token."
        )

    def _draw_position(self, pre: np.ndarray, gelu: np.ndarray) -> None:
        position = self.session.position
        self.heatmap.set_highlight_row(position)
        top = np.argsort(-gelu[position], kind="stable")[:TOP_UNITS_PER_TOKEN]  # [10]
        self.units_title.setText(
            f"Token {position} “{self.trace.token_strings[position]}”: "
            f"the {top.size} most active units"
        )
        self.units_table.setRowCount(top.size)
        for row, unit in enumerate(top):
            values = (str(unit), f"{pre[position, unit]:.4f}", f"{gelu[position, unit]:.4f}")
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.units_table.setItem(row, col, item)

    def clear(self) -> None:
        self._drawn = None
        for item in (self.points, self.curve, self.pre_hist, self.gelu_hist):
            item.clear()
        self.units_table.setRowCount(0)
        self.units_title.setText("")
        self.scatter_caption.setText("")
