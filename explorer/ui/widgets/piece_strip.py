"""The pre-tokenizer's pieces of a prompt as chips that wrap like text: the piece (␣ for a
space), and under it its bytes and merges; a piece that ended as one token is green. Hover
tells bytes, tokens and ids; a click emits the piece's index."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QColor

from explorer.ui.widgets.token_strip import TokenStrip
from gpt_core.model.bpe import PieceWalk, counted, symbol_display
from gpt_core.model.tokenizer import display_bytes

ONE_TOKEN = QColor("#d3f9d8")  # a piece that is one token of the vocabulary
SEVERAL = QColor("#f1f3f5")
CHIP_CHARACTERS = 24  # a longer piece's chip shows its start and end


class PieceStrip(TokenStrip):
    """positionClicked carries the index of the piece."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pieces: list[PieceWalk] = []

    def set_pieces(self, pieces: Sequence[PieceWalk]) -> None:
        self.pieces = list(pieces)
        self.set_tokens(
            [shortened(display_bytes(piece.data)) for piece in self.pieces],
            [piece.ids[0] for piece in self.pieces],
            [piece.data for piece in self.pieces],
        )
        self.notes = [piece_note(piece) for piece in self.pieces]
        self._relayout()

    def chip_fill(self, position: int) -> QColor:
        return ONE_TOKEN if len(self.pieces[position].ids) == 1 else SEVERAL

    def describe(self, position: int) -> str:
        piece = self.pieces[position]
        raw = " ".join(f"{b:02x}" for b in piece.data)
        tokens = " ".join(symbol_display(symbol) for symbol in piece.tokens)
        return (
            f"piece {position + 1}\nbytes {raw}\n{counted(len(piece.merges), 'merge')}\n"
            f"tokens {tokens}\nids {' '.join(str(i) for i in piece.ids)}"
        )


def shortened(text: str, most: int = CHIP_CHARACTERS) -> str:
    """A long piece (a 200-digit number) cut to its start and end, so its chip fits a row."""
    return text if len(text) <= most else f"{text[: most - 8]}…{text[-7:]}"


def piece_note(piece: PieceWalk) -> str:
    """The chip's second line: "6 B · 5 merges", and "→ 2 tokens" where it is more than one."""
    if piece.special:
        return "special token"
    note = f"{len(piece.data)} B · {counted(len(piece.merges), 'merge')}"
    return note if len(piece.ids) == 1 else f"{note} → {len(piece.ids)} tokens"
