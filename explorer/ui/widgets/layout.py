"""Layout shorthands the views share: splitters with stretch factors (some that stack their
panes when narrow), stacks of widgets with no margins, and scroll areas."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QLayout,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

HORIZONTAL = Qt.Orientation.Horizontal
VERTICAL = Qt.Orientation.Vertical


def splitter(
    orientation: Qt.Orientation,
    *widgets: QWidget,
    stretch: Sequence[int] = (),
    sizes: Sequence[int] = (),
) -> QSplitter:
    """The widgets side by side (or stacked), sharing the room by `stretch` or `sizes`."""
    split = QSplitter(orientation)
    _fill(split, widgets, stretch, sizes)
    return split


def _fill(split: QSplitter, widgets, stretch: Sequence[int], sizes: Sequence[int]) -> None:
    for widget in widgets:
        split.addWidget(widget)
        split.setCollapsible(split.count() - 1, False)  # a pane dragged to 0 px looks lost
    for index, factor in enumerate(stretch):
        split.setStretchFactor(index, factor)
    if sizes:
        split.setSizes(list(sizes))


class AdaptiveSplitter(QSplitter):
    """Panes side by side while the splitter is at least `side_by_side_from` px wide, one
    above the other below that (inside a scroll area, the view then scrolls)."""

    def __init__(self, side_by_side_from: int, parent: QWidget | None = None):
        super().__init__(HORIZONTAL, parent)
        self.side_by_side_from = side_by_side_from
        self.stretch: Sequence[int] = ()

    def resizeEvent(self, event) -> None:
        self._orient(event.size())
        super().resizeEvent(event)

    def set_side_by_side_from(self, px: int) -> None:
        """A new width to go side by side from (the panes' least widths changed)."""
        self.side_by_side_from = px
        self._orient(self.size())

    def _orient(self, size) -> None:
        wanted = HORIZONTAL if size.width() >= self.side_by_side_from else VERTICAL
        if wanted != self.orientation():
            self.setOrientation(wanted)
            # share the new direction by the stretch factors, not the old direction's sizes
            factors = list(self.stretch) or [1] * self.count()
            along = size.width() if wanted == HORIZONTAL else size.height()
            self.setSizes([along * f // sum(factors) for f in factors])
            self.updateGeometry()  # its least size is another now: the parent lays out again


def adaptive_splitter(
    side_by_side_from: int, *widgets: QWidget, stretch: Sequence[int] = ()
) -> AdaptiveSplitter:
    split = AdaptiveSplitter(side_by_side_from)
    split.stretch = stretch
    _fill(split, widgets, stretch, ())
    return split


def stack(*items, owner: QWidget | None = None, spacing: int = -1) -> QWidget:
    """The items one above the other with no margins, in `owner` (or a new widget). An item
    is a widget, a layout or (widget, stretch); labels and layouts keep their height, other
    widgets share the rest."""
    owner = owner if owner is not None else QWidget()
    layout = QVBoxLayout(owner)
    layout.setContentsMargins(0, 0, 0, 0)
    if spacing >= 0:
        layout.setSpacing(spacing)
    for item in items:
        if isinstance(item, QLayout):
            layout.addLayout(item)
        elif isinstance(item, tuple):
            layout.addWidget(*item)
        else:
            layout.addWidget(item, 0 if isinstance(item, QLabel) else 1)
    return owner


class FittingScrollArea(QScrollArea):
    """A scroll area whose widget gets the height its wrapped text needs at the width shown:
    QScrollArea sizes it by its minimum size alone, computed for another width, so wrapped
    lines would overlap what lies below them."""

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def eventFilter(self, watched, event) -> bool:
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._fit_height()
        return super().eventFilter(watched, event)

    def _fit_height(self) -> None:
        widget = self.widget()
        if widget is None or not widget.hasHeightForWidth():
            return
        width = self.viewport().width()
        if widget.minimumWidth() > width:  # scrolled sideways: the widget's own width
            width = widget.minimumWidth()
        # a box layout's height for a width counts its other items' preferred heights, not
        # their minimum ones, which may have grown since: whichever is more
        layout = widget.layout()
        floor = layout.totalMinimumSize().height() if layout is not None else 0
        needed = max(widget.heightForWidth(width), floor)
        if needed > 0 and needed != widget.minimumHeight():
            widget.setMinimumHeight(needed)


class WrappingPanel(QWidget):
    """A panel (a vertical box layout) that keeps the height its wrapped lines need at its
    width: a splitter lays its panes out by their minimum sizes alone, so wrapped labels or
    flowing rows in a pane would overlap what lies above them."""

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        QTimer.singleShot(0, self, self._fit_height)  # after the resize, not within it

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:  # an item's least size changed
            QTimer.singleShot(0, self, self._fit_height)
        return super().event(event)

    def _fit_height(self) -> None:
        layout = self.layout()
        if layout is None or not layout.hasHeightForWidth():
            return
        margins = layout.contentsMargins()
        width = self.width() - margins.left() - margins.right()
        items = [layout.itemAt(i) for i in range(layout.count())]
        items = [i for i in items if not i.isEmpty()]
        needed = sum(
            i.heightForWidth(width) if i.hasHeightForWidth() else i.minimumSize().height()
            for i in items
        )
        needed += layout.spacing() * max(0, len(items) - 1) + margins.top() + margins.bottom()
        if needed != self.minimumHeight():
            self.setMinimumHeight(needed)


def scrolled(widget: QWidget) -> QScrollArea:
    """`widget` filling a frameless scroll area: it grows with the room, and scrolls where
    the room is less than its minimum size (or the height its wrapped text needs) instead
    of being squeezed."""
    area = FittingScrollArea()
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    area.setWidget(widget)
    return area


def scroll_into_view(widget: QWidget) -> None:
    """Scroll the nearest scroll area holding `widget` so that its top is in sight."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    if parent is not None:
        parent.ensureWidgetVisible(widget, 0, 0)


def size_by_current_page(pages: QStackedWidget | QTabWidget) -> None:
    """Make the minimum size of `pages` that of the page shown, not of the largest page
    (hidden pages ignore their size hints), now and whenever the page changes."""

    def follow() -> None:
        current = pages.currentWidget()
        for index in range(pages.count()):
            page = pages.widget(index)
            policy = QSizePolicy.Policy.Preferred if page is current else QSizePolicy.Policy.Ignored
            page.setSizePolicy(policy, policy)
        pages.updateGeometry()

    pages.currentChanged.connect(follow)
    follow()
