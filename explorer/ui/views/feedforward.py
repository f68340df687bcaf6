"""Feed-forward network of one block: pre-GELU against GELU output over the GELU curve,
histograms of both, and the most active hidden units: the top 10 for the selected token
as a table, and the units most active anywhere in the prompt as a tokens x units heatmap
(click a token row to select it)."""

from __future__ import annotations

import functools

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
)

from explorer.ui.views.base import StageView
from explorer.ui.widgets.axes import style_axes
from explorer.ui.widgets.heatmap import Heatmap
from explorer.ui.widgets.layout import VERTICAL, adaptive_splitter, splitter, stack
from explorer.ui.widgets.point_cloud import PointCloud
from explorer.ui.widgets.tables import RIGHT, caption, heading, read_only_table
from gpt_core.model import GELU
from gpt_core.probe.sections import Section

MAX_POINTS = 20_000  # scatter points drawn; more makes every redraw slow
HISTOGRAM_BINS = 100
TOP_UNITS_PER_TOKEN = 10  # rows of the selected token's table
TOP_UNITS_IN_PROMPT = 64  # heatmap columns
CURVE_POINTS = 400

_PRE_COLOR = (51, 102, 204)
_GELU_COLOR = (232, 89, 12)
_CURVE_COLOR = "#c92a2a"


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def gelu_curve(x: np.ndarray) -> np.ndarray:
    """The model's own GELU at the points x."""
    return GELU()(torch.from_numpy(x)).numpy()


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


def most_active_units(gelu: np.ndarray, count: int) -> np.ndarray:
    """The `count` units with the largest GELU output anywhere, strongest first."""
    peak = gelu.max(axis=0)  # [4E]
    return np.argsort(-peak, kind="stable")[:count]


def _plot(x_label: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    style_axes(plot.getPlotItem(), bottom=x_label, left=y_label)
    plot.showGrid(x=True, y=True, alpha=0.2)
    return plot


def _histogram_curve(rgb: tuple[int, int, int]) -> pg.PlotDataItem:
    return pg.PlotDataItem(
        stepMode="center", fillLevel=0, pen=pg.mkPen(rgb, width=1.5), brush=pg.mkBrush(*rgb, 60)
    )


def _units_table(font) -> QTableWidget:
    table = read_only_table(["unit", "pre-GELU", "GELU"], row_height=22)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    # room for "unit", "pre-GELU" and "GELU" numbers side by side without eliding them
    table.setMinimumWidth(QFontMetrics(font).horizontalAdvance("0" * 26))
    return table


class FeedForwardView(StageView):
    name = "feedforward"

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self._drawn: tuple[object, int] | None = None  # (trace, block) the plots show

        self.scatter_plot = _plot("pre-GELU h", "GELU(h)")
        self.scatter_plot.setMinimumSize(220, 200)
        self.curve = pg.PlotDataItem(pen=pg.mkPen(_CURVE_COLOR, width=1.5))
        self.points = PointCloud(_PRE_COLOR, alpha=0.5)
        for item in (self.curve, self.points):
            self.scatter_plot.addItem(item)
        self.scatter_caption = caption(rich=True)

        # The colours are named in the axis title, not in a legend that would cover the bars.
        self.histogram_plot = _plot(
            f"<span style='color:{_hex(_PRE_COLOR)}'>pre-GELU</span> · "
            f"<span style='color:{_hex(_GELU_COLOR)}'>GELU</span>",
            "count",
        )
        self.pre_hist = _histogram_curve(_PRE_COLOR)
        self.gelu_hist = _histogram_curve(_GELU_COLOR)
        self.histogram_plot.addItem(self.pre_hist)
        self.histogram_plot.addItem(self.gelu_hist)
        self.histogram_plot.setMinimumHeight(140)

        self.heatmap = Heatmap()
        self.heatmap.setMinimumSize(260, 260)
        self.heatmap.plot.setLabel("bottom", "hidden unit")
        self.heatmap_caption = caption()

        self.units_title = heading()
        self.units_table = _units_table(self.font())
        self.units_table.setMinimumHeight(260)  # all ten rows

        self._lay_out()
        self.heatmap.clicked.connect(lambda row, col: self.session.select_position(row))

    def _lay_out(self) -> None:
        scatter = stack(self.scatter_caption, self.scatter_plot, spacing=2)
        plots = splitter(VERTICAL, scatter, self.histogram_plot, stretch=(3, 2))
        split = adaptive_splitter(
            900,
            plots,
            stack(self.heatmap_caption, self.heatmap, spacing=2),
            stack(self.units_title, self.units_table, spacing=2),
            stretch=(3, 4, 2),
        )
        stack(split, owner=self)

    # --- drawing ---
    def draw(self, section: Section) -> None:
        trace, layer = self.trace, section.layer
        pre = trace[section.key("pre_gelu")]  # [T, 4E]
        gelu = trace[section.key("gelu")]  # [T, 4E]
        if self._drawn is None or self._drawn[0] is not trace or self._drawn[1] != layer:
            self._draw_distribution(pre, gelu)
            self._draw_prompt_units(pre, gelu, layer)
            self._drawn = (trace, layer)
        self._draw_position(pre, gelu)

    def _draw_distribution(self, pre: np.ndarray, gelu: np.ndarray) -> None:
        """Scatter over the curve and both histograms: they depend on the run, not on the
        selected token."""
        flat_pre, flat_gelu = pre.ravel(), gelu.ravel()  # [T * 4E]
        finite = np.isfinite(flat_pre) & np.isfinite(flat_gelu)
        if not finite.all():  # NaN/Inf have no place on the curve: left out, and said so
            flat_pre, flat_gelu = flat_pre[finite], flat_gelu[finite]
        if not flat_pre.size:
            flat_pre = flat_gelu = np.zeros(1, dtype=np.float32)
        shown = sample_indices(flat_pre.size, MAX_POINTS)
        self.points.setData(flat_pre[shown], flat_gelu[shown])
        low, high = float(flat_pre.min()), float(flat_pre.max())
        x = np.linspace(low, high, CURVE_POINTS)
        self.curve.setData(x, gelu_curve(x))
        sampled = " (a fixed random sample)" if shown.size < flat_pre.size else ""
        # Colours named in the caption: a legend would cover the curve on a plot this narrow.
        left_out = int((~finite).sum())
        self.scatter_caption.setText(
            f"<span style='color:{_hex(_PRE_COLOR)}'>{shown.size:,} of {flat_pre.size:,} "
            f"values shown</span>{sampled} on the "
            f"<span style='color:{_CURVE_COLOR}'>GELU curve</span>"
            + (f" · <b>{left_out:,} NaN/Inf values left out</b>" if left_out else "")
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
                item.setTextAlignment(RIGHT)
                self.units_table.setItem(row, col, item)

    def clear(self) -> None:
        self._drawn = None
        for item in (self.points, self.curve, self.pre_hist, self.gelu_hist):
            item.clear()
        self.units_table.setRowCount(0)
        self.units_title.setText("")
        self.scatter_caption.setText("")
