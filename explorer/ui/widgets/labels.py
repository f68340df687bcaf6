"""A pyqtgraph label that fits the width its layout gives it.

pyqtgraph's LabelItem makes its text's full width its minimum width, so a long title or
hover read-out widens the whole plot layout past its widget's right edge, where the
colour bar, the last column and the legend are cut off. This one wraps instead.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt


class FittingLabel(pg.LabelItem):
    """A LabelItem with no minimum width: text wider than its room wraps onto more lines.
    `title_of`: the PlotItem whose title it is (its title row grows with the lines)."""

    def __init__(self, text: str = "", title_of: pg.PlotItem | None = None, **args):
        self.title_of = title_of
        super().__init__(text, **args)

    def resizeEvent(self, ev) -> None:
        room = self.rect().width()
        self.item.setTextWidth(-1)  # the text's natural width, on one line
        if 0 < room < self.itemRect().width():
            self.item.setTextWidth(room)
        super().resizeEvent(ev)

    def updateMin(self) -> None:
        bounds = self.itemRect()
        self.setMinimumWidth(0)
        self.setMinimumHeight(bounds.height())
        self._sizeHint = {
            Qt.SizeHint.MinimumSize: (0, bounds.height()),
            Qt.SizeHint.PreferredSize: (bounds.width(), bounds.height()),
            Qt.SizeHint.MaximumSize: (-1, -1),
            Qt.SizeHint.MinimumDescent: (0, 0),
        }
        if self.title_of is not None and self.isVisible():  # setTitle fixes the row at 30 px
            height = max(30.0, bounds.height())
            self.setMaximumHeight(height)
            self.title_of.layout.setRowFixedHeight(0, height)
        self.updateGeometry()


def fitting_title(plot: pg.PlotItem) -> None:
    """Give `plot` a title that wraps rather than widening the plot (setTitle still works).
    Once: a second call keeps the title already set."""
    old = plot.titleLabel
    if isinstance(old, FittingLabel):
        return
    plot.layout.removeItem(old)
    old.setParentItem(None)
    plot.titleLabel = FittingLabel("", title_of=plot, size="11pt", parent=plot)
    plot.layout.addItem(plot.titleLabel, 0, 1)
    plot.setTitle(None)  # hidden until a title is set, as before
