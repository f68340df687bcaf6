"""One step of a computation explained: a title, the operation with this run's shapes, the
source lines that compute it, its plots and its numbers, in a light frame."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from explorer.ui.widgets.source_lines import MONOSPACE, SourceLines

PLOT_PX = 250  # a title, an axis, a hover line and PLOT_MIN_PX (axes.py) of bars


def _wrapping_label(style: str) -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setStyleSheet(style)
    return label


class StepPanel(QFrame):
    def __init__(self, title: str, source_file: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("step")
        self.setStyleSheet("QFrame#step { background: white; border: 1px solid #dee2e6; }")
        self.title = QLabel(title)
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: 600; font-size: 13px;")
        self.operation = _wrapping_label(f"font-family: {MONOSPACE}; color: #364fc7;")
        self.source = SourceLines(source_file)
        self.numbers = _wrapping_label("color: #212529;")
        self.numbers.setTextFormat(Qt.TextFormat.RichText)
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(8, 6, 8, 6)
        self.body.setSpacing(4)
        for widget in (self.title, self.operation, self.source):
            self.body.addWidget(widget)
        self._plots_at = self.body.count()
        self.body.addWidget(self.numbers)

    def add_plot(self, widget: QWidget, height: int = PLOT_PX) -> None:
        """Plots go between the source lines and the numbers, in the order added, each
        `height` px tall: a plot's own size hint would make every step a screen high."""
        widget.setFixedHeight(height)
        self.body.insertWidget(self._plots_at, widget)
        self._plots_at += 1

    def set_operation(self, lines: Sequence[str]) -> None:
        self.operation.setText("\n".join(lines))

    def set_numbers(self, html: str) -> None:
        self.numbers.setText(html)
