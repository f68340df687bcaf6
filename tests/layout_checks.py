"""The layout audit's checks: they walk the visible widget tree of a window and name no
widget, so a view added later is checked as it is. Each returns a list of problems (text
that says where); an empty list passes.

- every visible plot (a pyqtgraph view box, a heatmap's image) is at least PLOT_MIN_PX,
  or the `min_plot_px` its widget documents; scrolling to it is fine, a sliver is not;
- no visible label, button or item-view cell cuts or elides its text, unless its tooltip
  holds the whole text;
- no visible widget overlaps a sibling;
- no horizontal scroll bar (a stage view, a tab, a dock) unless a heatmap wider than the view needs it;
- a T x T heatmap (the same labels down and across) draws its cells at most
  MAX_CELL_ASPECT : 1;
- no axis draws its tick labels over each other;
- an axis that names tokens shows as many labels as fit on its cells at TOKEN_LABEL_PX
  apart (or the label's own height, or width and a gap, if larger), less one, and always
  the positions that `keep` names (the selected one, where a patching pair differs).
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QFontMetrics, QImage, QPainter, QTextDocument
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QDockWidget,
    QLabel,
    QScrollArea,
    QSplitterHandle,
    QStyle,
    QTabBar,
    QToolBar,
    QWidget,
)

from explorer.ui.widgets.heatmap import Heatmap

PLOT_MIN_PX = (240, 160)  # width, height
MAX_CELL_ASPECT = 2.0
TOKEN_LABEL_PX = 12
TOKEN_LABEL_GAP_PX = 4  # between two labels side by side
TEXT_SLACK_PX = 2  # rounding of font metrics


def shown(widget: QWidget) -> bool:
    return widget.isVisible() and widget.width() > 0 and widget.height() > 0


def visible_widgets(root: QWidget) -> list[QWidget]:
    return [w for w in [root, *root.findChildren(QWidget)] if shown(w) and w.window() is root]


def where(widget: QWidget) -> str:
    """A widget's path of class names (and object names), for a problem's text."""
    parts = []
    while widget is not None:
        parts.append(widget.objectName() or type(widget).__name__)
        widget = widget.parentWidget()
    return "/".join(reversed(parts[:5]))


# ---------------------------------------------------------------- plots
def _view_boxes(view: pg.GraphicsView) -> list[pg.ViewBox]:
    boxes = []
    for item in view.scene().items():
        if not isinstance(item, pg.ViewBox) or not item.isVisible():
            continue
        owner = item.parentItem()
        if isinstance(owner, pg.ColorBarItem | pg.HistogramLUTItem):
            continue  # a colour bar's strip, narrow by design
        boxes.append(item)
    return boxes


def plot_problems(widgets: list[QWidget]) -> list[str]:
    problems = []
    for view in (w for w in widgets if isinstance(w, pg.GraphicsView)):
        low_w, low_h = getattr(view, "min_plot_px", PLOT_MIN_PX)
        for box in _view_boxes(view):
            rect = box.sceneBoundingRect()
            if rect.width() + 1 < low_w or rect.height() + 1 < low_h:
                problems.append(
                    f"plot {rect.width():.0f}x{rect.height():.0f} px < {low_w}x{low_h} "
                    f"in {where(view)}"
                )
    return problems


def aspect_problems(widgets: list[QWidget]) -> list[str]:
    problems = []
    for heatmap in (w for w in widgets if isinstance(w, Heatmap)):
        rows, cols = heatmap.matrix.shape
        if heatmap.row_labels != heatmap.col_labels or rows < 2:
            continue  # not a positions x positions map
        box = heatmap.plot.getViewBox()
        (x0, x1), (y0, y1) = box.viewRange()
        cell_w, cell_h = box.width() / (x1 - x0), box.height() / (y1 - y0)
        aspect = max(cell_w, cell_h) / max(min(cell_w, cell_h), 1e-9)
        if aspect > MAX_CELL_ASPECT:
            problems.append(
                f"{rows}x{cols} heatmap drawn {box.width():.0f}x{box.height():.0f} px "
                f"(cells {aspect:.1f}:1) in {where(heatmap)}"
            )
    return problems


# ---------------------------------------------------------------- text
def _plain(text: str) -> str:
    document = QTextDocument()
    document.setHtml(text)
    return document.toPlainText()


def _tooltip_holds(widget: QWidget, text: str) -> bool:
    tip = _plain(widget.toolTip()) if widget.toolTip() else ""
    return bool(tip) and text.replace("…", "").strip() in tip


def _label_cut(label: QLabel) -> bool:
    room = label.contentsRect()
    room.setWidth(min(room.width(), _seen_width(label)))
    text = label.text()
    rich = label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(text)
    )
    if label.wordWrap():
        return label.heightForWidth(label.width()) > label.height() + TEXT_SLACK_PX
    metrics = QFontMetrics(label.font())
    if rich:
        document = QTextDocument()
        document.setDefaultFont(label.font())
        document.setHtml(text)
        document.setDocumentMargin(0)
        width, height = document.idealWidth(), document.size().height()
    else:
        lines = text.split("\n")
        width = max(metrics.horizontalAdvance(line) for line in lines)
        height = metrics.height() * len(lines)
    return width > room.width() + TEXT_SLACK_PX or height > room.height() + TEXT_SLACK_PX + 2


def _seen_width(widget: QWidget) -> int:
    """The widget's width in view: less where a parent (a scrolled dock) cuts it off."""
    seen = widget.visibleRegion().boundingRect()
    return seen.width() if not seen.isEmpty() else widget.width()


def _button_cut(button: QAbstractButton) -> bool:
    hint = button.sizeHint()
    return hint.width() > _seen_width(button) + TEXT_SLACK_PX


def _cells_cut(view: QAbstractItemView) -> list[str]:
    """Cells whose text does not fit their column (Qt elides it to "…")."""
    model = view.model()
    if model is None or not hasattr(view, "visualRect"):
        return []
    problems = []
    metrics = QFontMetrics(view.font())
    viewport = view.viewport().rect()
    # the cell's text margins, as Qt's item delegate lays them out
    margins = 2 * (
        view.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, view) + 1
    )
    for row in range(min(model.rowCount(), 200)):
        for column in range(model.columnCount()):
            index = model.index(row, column)
            text = index.data(Qt.ItemDataRole.DisplayRole)
            rect = view.visualRect(index)
            if not text or not rect.isValid() or not rect.intersects(viewport):
                continue
            needed = metrics.horizontalAdvance(str(text)) + margins
            if index.data(Qt.ItemDataRole.DecorationRole) is not None:
                needed += view.iconSize().width() + 4
            if index.data(Qt.ItemDataRole.CheckStateRole) is not None:
                needed += 20
            tip = index.data(Qt.ItemDataRole.ToolTipRole)
            right = min(rect.right(), viewport.right())
            if needed > right - rect.left() + TEXT_SLACK_PX and str(text) not in str(tip or ""):
                problems.append(f"cell {str(text)!r} cut to {right - rect.left()} px")
    return problems


def text_problems(widgets: list[QWidget]) -> list[str]:
    problems = []
    for widget in widgets:
        if isinstance(widget, QLabel) and widget.text() and widget.pixmap().isNull():
            if _label_cut(widget) and not _tooltip_holds(widget, _plain(widget.text())):
                problems.append(f"label {_plain(widget.text())[:60]!r} cut in {where(widget)}")
        elif isinstance(widget, QAbstractButton) and widget.text() and _button_cut(widget):
            if not _tooltip_holds(widget, widget.text()):
                problems.append(f"button {widget.text()!r} cut in {where(widget)}")
        elif isinstance(widget, QAbstractItemView):
            problems += [f"{p} in {where(widget)}" for p in _cells_cut(widget)]
    return problems


# ---------------------------------------------------------------- overlap and scrolling
_MAY_OVERLAP = (QSplitterHandle, QTabBar, QToolBar, QDockWidget)


def overlap_problems(widgets: list[QWidget]) -> list[str]:
    problems = []
    for parent in widgets:
        if isinstance(parent, QAbstractScrollArea | QToolBar | QDockWidget | pg.GraphicsView):
            continue  # scroll bars, corner widgets and viewports are laid out by the area
        children = [
            c for c in parent.children() if isinstance(c, QWidget) and shown(c) and not c.isWindow()
        ]
        children = [c for c in children if not isinstance(c, _MAY_OVERLAP)]
        for i, first in enumerate(children):
            for second in children[i + 1 :]:
                common: QRect = first.geometry().intersected(second.geometry())
                if common.width() > 2 and common.height() > 2:
                    problems.append(
                        f"{where(first)} overlaps {type(second).__name__} "
                        f"{_describe(second)} by {common.width()}x{common.height()} px"
                    )
    return problems


def _describe(widget: QWidget) -> str:
    text = getattr(widget, "text", None)
    return repr(text()[:30]) if callable(text) and isinstance(text(), str) else ""


def scroll_problems(widgets: list[QWidget]) -> list[str]:
    problems = []
    for area in (w for w in widgets if isinstance(w, QScrollArea)):
        bar = area.horizontalScrollBar()
        if not bar.isVisible() or bar.maximum() <= 0 or area.widget() is None:
            continue
        room = area.viewport().width()
        wide_heatmaps = [
            h for h in area.widget().findChildren(Heatmap) if shown(h) and h.minimumWidth() > room
        ]
        if not wide_heatmaps:
            problems.append(
                f"horizontal scroll bar ({bar.maximum()} px more) in {where(area)}: "
                f"{_widest(area.widget(), room)}"
            )
    return problems


def _widest(content: QWidget, room: int) -> str:
    """The deepest visible widget wider than `room`: what forces the scroll bar."""
    culprit = None
    for widget in content.findChildren(QWidget):
        if shown(widget) and widget.minimumSizeHint().width() > room:
            culprit = widget
    return where(culprit) if culprit is not None else "?"


# ---------------------------------------------------------------- tick labels
def tick_problems(widgets: list[QWidget]) -> list[str]:
    """Tick labels drawn over each other (pyqtgraph's own ticks, a log scale's too)."""
    problems = []
    for view in (w for w in widgets if isinstance(w, pg.GraphicsView)):
        for axis in view.scene().items():
            if (
                not isinstance(axis, pg.AxisItem)
                or not axis.isVisible()
                or not axis.style["showValues"]
            ):
                continue
            image = QImage(1, 1, QImage.Format.Format_ARGB32)
            painter = QPainter(image)  # the axis measures its labels with it
            try:
                specs = axis.generateDrawSpecs(painter)
            finally:
                painter.end()
            rects = [rect for rect, _, text in (specs[2] if specs else []) if text]
            vertical = axis.orientation in ("left", "right")
            spans = sorted(
                (r.top(), r.bottom()) if vertical else (r.left(), r.right()) for r in rects
            )
            piled = sum(
                1 for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1] - TEXT_SLACK_PX
            )
            if piled:
                problems.append(
                    f"{axis.orientation} axis: {piled} tick labels overlap in {where(view)}"
                )
    return problems


# ---------------------------------------------------------------- token axes
def token_axis_problems(widgets: list[QWidget], names: set[str], keep) -> list[str]:
    """`names`: every label a position may have; `keep(view)`: those that must show on the
    axes of `view` when in view."""
    problems = []
    for view in (w for w in widgets if isinstance(w, pg.GraphicsView)):
        for item in view.scene().items():
            if isinstance(item, pg.AxisItem) and item.isVisible():
                problem = _axis_problem(item, names, keep(view))
                if problem:
                    problems.append(f"{problem} in {where(view)}")
    return problems


def _axis_problem(axis: pg.AxisItem, names: set[str], keep: set[str]) -> str:
    levels = axis._tickLevels
    if not levels or not levels[0] or axis.linkedView() is None:
        return ""
    ticks = [t for level in levels for t in level]
    texts = [text for _, text in ticks]
    if not all(text in names for text in texts):
        return ""  # not an axis of positions
    vertical = axis.orientation in ("left", "right")
    low, high = axis.linkedView().viewRange()[1 if vertical else 0]
    offset = ticks[0][0] - int(texts[0].split(":", 1)[0])  # cells at i + 0.5, places at i
    in_view = [n for n in names if low <= int(n.split(":", 1)[0]) + offset <= high]
    count = len({n.split(":", 1)[0] for n in in_view})
    if count == 0:
        return ""
    metrics = QFontMetrics(axis.style.get("tickFont") or axis.font())
    widest = max(metrics.horizontalAdvance(t) for t in in_view) + TOKEN_LABEL_GAP_PX
    extent = metrics.height() if vertical else widest
    length = axis.linkedView().height() if vertical else axis.linkedView().width()
    cell_px = length / max(high - low, 1e-9)
    gap = max(1, math.ceil(max(TOKEN_LABEL_PX, extent) / cell_px))  # cells a label needs
    fit = max(2 if count > 1 else 1, (count - 1) // gap + 1)
    missing = sorted(k for k in keep if k in in_view and k not in texts)
    if len(set(texts)) < fit - 1:
        return f"{axis.orientation} axis shows {len(set(texts))} of {count} positions, {fit} fit"
    if missing:
        return f"{axis.orientation} axis leaves out {missing[:3]}"
    return ""
