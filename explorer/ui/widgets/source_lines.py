"""Lines of source code beside what they compute: monospace, numbered as in their file,
their common indentation removed, wrapped (not cut off) where the room is narrow."""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

MONOSPACE = "'DejaVu Sans Mono', 'Menlo', 'Consolas', monospace"


class SourceLines(QLabel):
    def __init__(self, file_name: str, parent=None):
        super().__init__(parent)
        self.file_name = file_name  # said in the tooltip: where the numbers point
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setStyleSheet("background: #f8f9fa; border-left: 3px solid #ced4da; padding: 3px;")

    def set_lines(self, lines: Sequence[tuple[int, str]]) -> None:
        """(line number, text) pairs, in order."""
        code = textwrap.dedent("\n".join(text for _, text in lines)).splitlines()
        width = len(str(max((number for number, _ in lines), default=0)))
        rows = [
            f"<span style='color:#868e96'>{number:>{width}}</span>  {html.escape(text)}"
            for (number, _), text in zip(lines, code, strict=True)
        ]
        self.setText(
            f'<div style="font-family: {MONOSPACE}; font-size: 11px; white-space: pre-wrap;">'
            + "<br>".join(rows)
            + "</div>"
        )
        self.setToolTip(f"{self.file_name}, lines {', '.join(str(n) for n, _ in lines)}")
