"""Tokens, from text: the prompt's pre-tokenizer pieces as chips (bytes, merges, green where
the piece is one token), and for the selected piece its bytes with the characters GPT-2's
files write for them, then every merge in order, to the ids. The piece followed is the one
holding the selected position: a click on a chip here or in the token strip opens it.
"""

from __future__ import annotations

from explorer.state.tokens import PromptTokens, prompt_tokens
from explorer.ui.views.base import StageView
from explorer.ui.widgets.layout import stack
from explorer.ui.widgets.merge_steps import ByteMap, MergeSteps
from explorer.ui.widgets.piece_strip import PieceStrip, shortened
from explorer.ui.widgets.tables import caption, heading
from explorer.ui.widgets.token_strip import scrolled
from gpt_core.model.bpe import PieceWalk, counted, symbol_display
from gpt_core.model.tokenizer import display_bytes

PIECES_MAX_PX = 170  # five rows of chips
LEGEND = (
    "Green chips are pieces that are one token of the vocabulary; under each piece, its "
    "bytes (B) and the merges it took. Click a chip, or a token under the prompt, for its "
    "merges."
)


class TokensView(StageView):
    name = "tokens"

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.summary = caption()
        self.legend = caption("color: #868e96; font-size: 11px;")
        self.legend.setText(LEGEND)
        self.pieces = PieceStrip()
        self.piece_title = heading()
        self.bytes_note = caption("color: #495057; font-size: 11px;")
        self.bytes_note.setText(
            "Its UTF-8 bytes, one character each as vocab.bpe and encoder.json write them "
            "(GPT-2 gives the bytes that do not print, a space among them, the characters "
            "from Ā on: a space is Ġ, a newline Ċ)."
        )
        self.byte_map = ByteMap()
        self.steps = MergeSteps()
        self.steps.setMinimumHeight(90)
        self.result = caption()
        self.tokens: PromptTokens | None = None
        self._made_from: tuple | None = None
        self.piece: int | None = None  # the piece shown
        self.pieces_area = scrolled(self.pieces, PIECES_MAX_PX)
        # As tall as its chips, up to five rows, then it scrolls: never squeezed, no gap.
        self.pieces.heightChanged.connect(self._fit_pieces)
        stack(
            self.summary,
            self.legend,
            (self.pieces_area, 0),
            self.piece_title,
            self.bytes_note,
            (self.byte_map, 0),
            self.steps,
            self.result,
            owner=self,
        )
        self.layout().addStretch(0)
        self.pieces.positionClicked.connect(self._piece_clicked)

    def draw(self, section) -> None:
        state, trace = self.session.state, self.trace
        made_from = (state.ran_text or "", state.generated, tuple(trace.token_ids.tolist()))
        if made_from != self._made_from:
            self.tokens = prompt_tokens(*made_from)
            self._made_from = made_from
            self.pieces.set_pieces(self.tokens.walk.pieces)
            self.summary.setText(summary(self.tokens))
        self.show_position()

    def show_position(self) -> None:
        if self.tokens is None:
            return
        self.piece = self.tokens.piece_at(self.session.position)
        self.pieces.set_selected(self.piece)
        self._reveal_piece()
        piece = None if self.piece is None else self.tokens.walk.pieces[self.piece]
        self.byte_map.set_piece(piece)
        self.steps.set_piece(piece)
        self.piece_title.setText(self._title(piece))
        self.result.setText(self._result(piece))
        self.bytes_note.setVisible(piece is not None and not piece.special)
        self.byte_map.setVisible(piece is not None and not piece.special)

    def show_head(self) -> None:
        """The head does not change tokens."""

    def clear(self) -> None:
        self.tokens, self._made_from, self.piece = None, None, None
        self.pieces.set_pieces([])

    def _fit_pieces(self, height: int) -> None:
        """The chips laid out again (a new width): the area fits them, the piece in view."""
        self.pieces_area.setFixedHeight(min(height, PIECES_MAX_PX))
        self._reveal_piece()

    def _reveal_piece(self) -> None:
        if self.piece is not None and self.piece < len(self.pieces.pieces):
            chip = self.pieces.chip_rect(self.piece)
            self.pieces_area.ensureVisible(chip.center().x(), chip.center().y(), 0, chip.height())

    def _piece_clicked(self, piece: int) -> None:
        position = self.tokens.position_of(piece)
        if position is not None:
            self.session.select_position(position)

    def _title(self, piece: PieceWalk | None) -> str:
        if piece is None:
            return (
                f"Position {self.session.position} was generated: sampled from the model, "
                "not read from the text, so it has no merges."
            )
        text = shortened(display_bytes(piece.data), 60)
        if piece.special:
            return f"Piece {self.piece + 1}: “{text}”, the special token — never merged"
        return (
            f"Piece {self.piece + 1}: “{text}” · {counted(len(piece.data), 'byte')} · "
            f"{counted(len(piece.merges), 'merge')} → {counted(len(piece.ids), 'token')}"
        )

    def _result(self, piece: PieceWalk | None) -> str:
        if piece is None:
            return ""
        pairs = [f"{symbol_display(s)} = {i}" for s, i in zip(piece.tokens, piece.ids, strict=True)]
        done = "" if piece.special else "No neighbouring pair is in vocab.bpe any more. "
        return f"{done}encoder.json gives the ids: {' · '.join(pairs)}"


def summary(tokens: PromptTokens) -> str:
    """One line for the whole prompt: characters → pieces → bytes → merges → tokens."""
    pieces = tokens.walk.pieces
    line = (
        f"{len(tokens.walk.text):,} characters → {counted(len(pieces), 'piece')} → "
        f"{counted(sum(len(p.data) for p in pieces), 'byte')} → "
        f"{counted(sum(len(p.merges) for p in pieces), 'merge')} → "
        f"{counted(len(tokens.walk.ids), 'token')}"
    )
    if tokens.skip:
        line += f"; the run dropped the first {counted(tokens.skip, 'token')} (cropped)"
    if tokens.n_generated:
        line += f"; then {counted(tokens.n_generated, 'generated token')}, with no merges"
    if not tokens.matches:
        line += "; these are the tokens of the run's text read again, not the run's own ids"
    return line
