"""One piece's BPE walk as two tables: its bytes with the character each stands for in
GPT-2's files, and every merge as a row (step, the pair joined, its rank in vocab.bpe, the
symbols after, the new one outlined). Both are item models: a 200-byte piece's 200 rows
cost only the rows on screen."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPen
from PySide6.QtWidgets import QAbstractItemView, QStyledItemDelegate, QTableView

from gpt_core.model.bpe import PieceWalk, byte_to_char, symbol_display
from gpt_core.model.tokenizer import display_bytes

SYMBOLS_ROLE = Qt.ItemDataRole.UserRole  # (display symbols, index of the joined one or -1)
_GAP, _PAD = 3, 3
_NEW = QColor("#e8590c")


class _Table(QAbstractTableModel):
    """Read-only cells from a function of (row, column)."""

    def __init__(self, headers: list[str], rows: int, cell, side_headers=None):
        super().__init__()
        self.headers, self.rows, self.cell, self.side_headers = headers, rows, cell, side_headers

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else self.rows

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.headers)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        return self.cell(index.row(), index.column(), role)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.headers[section]
        return self.side_headers[section] if self.side_headers else str(section + 1)


def merge_rows(piece: PieceWalk) -> list[tuple[str, str, str, tuple[str, ...], int]]:
    """(step, pair, rank, symbols after, index of the joined symbol) for each row: the bytes
    as they start, then one row per merge. The symbols are vocab.bpe's (Ġ); the table shows
    them as the app does (␣), row by row as rows come on screen."""
    rows = [("start", "one symbol per byte", "", piece.steps[0], -1)]
    for number, merge in enumerate(piece.merges, 1):
        pair = f"{symbol_display(merge.left)} + {symbol_display(merge.right)}"
        rows.append((str(number), pair, f"{merge.rank:,}", piece.steps[number], merge.position))
    return rows


class _SymbolChips(QStyledItemDelegate):
    """Paints a row's symbols as boxes side by side, the one just joined outlined."""

    def paint(self, painter, option, index) -> None:
        symbols, joined = index.data(SYMBOLS_ROLE)
        painter.save()
        painter.setClipRect(option.rect)
        metrics = QFontMetrics(option.font)
        widths = [metrics.horizontalAdvance(symbol) + 2 * _PAD for symbol in symbols]
        rect = option.rect
        x = rect.left() + _GAP - _shift(widths, joined, rect.width())
        for i, (symbol, width) in enumerate(zip(symbols, widths, strict=True)):
            if x > rect.right():
                break
            box = QRect(x, rect.top() + 2, width, rect.height() - 4)
            painter.setPen(QPen(_NEW, 2) if i == joined else QPen(QColor("#adb5bd")))
            painter.setBrush(QColor("#fff4e6") if i == joined else QColor("#f8f9fa"))
            painter.drawRoundedRect(box, 3, 3)
            painter.setPen(QColor("#212529"))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, symbol)
            x += width + _GAP
        painter.restore()

    def sizeHint(self, option, index) -> QSize:
        symbols, _ = index.data(SYMBOLS_ROLE)
        metrics = QFontMetrics(option.font)
        width = sum(metrics.horizontalAdvance(s) + 2 * _PAD + _GAP for s in symbols) + _GAP
        return QSize(width, metrics.height() + 6)


def _shift(widths: list[int], joined: int, room: int) -> int:
    """How far to move a row of boxes left so the joined one is in the room's right half
    when it would be past the right edge (a long piece's later merges)."""
    if joined < 0:
        return 0
    right = sum(w + _GAP for w in widths[: joined + 1]) + _GAP
    return max(0, right - room // 2) if right > room else 0


class MergeSteps(QTableView):
    """The merges of one piece, a row per step."""

    COLUMNS = ["step", "pair joined", "rank", "symbols after the step"]

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setWordWrap(False)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(24)
        self.horizontalHeader().setStretchLastSection(True)
        self.setItemDelegateForColumn(3, _SymbolChips(self))
        self.rows: list[tuple] = []
        self.setModel(_Table(self.COLUMNS, 0, self._cell))
        self.setToolTip(
            "Each step joins the neighbouring pair that comes first in vocab.bpe (its rank is "
            "its line there, 0 for the first merge); the new symbol is outlined"
        )

    def set_piece(self, piece: PieceWalk | None) -> None:
        self.rows = merge_rows(piece) if piece is not None else []
        self.setModel(_Table(self.COLUMNS, len(self.rows), self._cell))
        # The symbols take the room: the other columns are as wide as their longest text.
        metrics = QFontMetrics(self.font())
        for column in range(3):
            texts = [self.COLUMNS[column], *(row[column] for row in self.rows)]
            widest = max(metrics.horizontalAdvance(text) for text in texts)
            self.setColumnWidth(column, min(widest + 14, 180))
        # As tall as its rows (a short walk leaves no empty table), scrolling past that.
        rows = self.verticalHeader().defaultSectionSize() * len(self.rows)
        bar = self.horizontalScrollBar().sizeHint().height()
        self.setMaximumHeight(self.horizontalHeader().sizeHint().height() + rows + bar + 4)

    def _cell(self, row: int, column: int, role):
        if role == SYMBOLS_ROLE and column == 3:
            return [symbol_display(symbol) for symbol in self.rows[row][3]], self.rows[row][4]
        if role == Qt.ItemDataRole.DisplayRole and column < 3:
            return self.rows[row][column]
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (0, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class ByteMap(QTableView):
    """A piece's bytes, a column each: the byte in hex, the character GPT-2's files write
    for it (Ġ for a space), and how the app shows it (␣)."""

    SIDE = ["byte", "in vocab.bpe", "shown as"]

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().hide()
        self.horizontalHeader().setDefaultSectionSize(40)
        self.verticalHeader().setDefaultSectionSize(22)
        self.data_bytes = b""
        self.setModel(_Table([], 3, self._cell, self.SIDE))
        self._fit_height()

    def set_piece(self, piece: PieceWalk | None) -> None:
        self.data_bytes = b"" if piece is None or piece.special else piece.data
        self.setModel(_Table([""] * len(self.data_bytes), 3, self._cell, self.SIDE))
        self._fit_height()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        """The three rows, and the scroll bar only when the bytes are wider than the view."""
        columns = self.horizontalHeader().length() + self.verticalHeader().width()
        bar = self.horizontalScrollBar().sizeHint().height() if columns > self.width() else 0
        self.setFixedHeight(self.verticalHeader().length() + 2 * self.frameWidth() + bar)

    def _cell(self, row: int, column: int, role):
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        byte = self.data_bytes[column]
        if row == 0:
            return f"{byte:02x}"
        return byte_to_char()[byte] if row == 1 else display_bytes(bytes([byte]))
