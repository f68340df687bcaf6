"""Layout shorthands the views share: splitters with stretch factors, and stacks of widgets
with no margins."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLayout, QSplitter, QVBoxLayout, QWidget

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
    for widget in widgets:
        split.addWidget(widget)
    for index, factor in enumerate(stretch):
        split.setStretchFactor(index, factor)
    if sizes:
        split.setSizes(list(sizes))
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
