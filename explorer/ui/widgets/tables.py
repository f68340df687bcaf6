"""Read-only tables and labels the views share."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QLabel, QTableWidget, QTableWidgetItem

RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def read_only_table(columns: Sequence[str], row_height: int = 21) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setWordWrap(False)  # elide a long token on its one line, not wrap it out of sight
    table.verticalHeader().setDefaultSectionSize(row_height)
    return table


class NumberItem(QTableWidgetItem):
    """A right-aligned table cell that sorts by its number, not its text."""

    def __init__(self, value: float, text: str):
        super().__init__(text)
        self.value = value
        self.setTextAlignment(RIGHT)

    def __lt__(self, other) -> bool:
        if isinstance(other, NumberItem):
            return self.value < other.value
        return super().__lt__(other)


def caption(style: str = "color: #495057;", rich: bool = False) -> QLabel:
    """A wrapping label under or over a plot; plain text unless `rich` (tokens may hold <)."""
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(style)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    return label


def heading() -> QLabel:
    return caption("font-weight: 600;")
