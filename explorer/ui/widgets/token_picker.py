"""An editable combo box for choosing one token: pick one of the candidates it is fed
(the likely next tokens, say), or type text that must be exactly one token.

Tokens are shown as the token strip shows them (␣ for a space, ↵ for a newline); typed text
in that form is read back as the text it stands for, never encoded literally.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox

from gpt_core import GPTCoreError
from gpt_core.model.tokenizer import Tokenizer

_INVALID_STYLE = "QComboBox { border: 1px solid #c92a2a; }"


class TokenPicker(QComboBox):
    """token_id() is the chosen token, or None with the reason in `problem`."""

    tokenChanged = Signal(int)  # a valid token was picked or typed

    def __init__(self, tokenizer: Tokenizer, role: str = "the token", parent=None):
        super().__init__(parent)
        self.tokenizer = tokenizer
        self.role = role  # how messages name it: "the target", "the answer"
        self.problem = ""  # why token_id() is None, for the person
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)  # typing adds no items
        self.setMinimumWidth(140)
        self.setToolTip(
            "Pick a likely token, or type one (␣ or a space for a leading space, ↵ for a newline)"
        )
        self.activated.connect(self._announce)
        self.lineEdit().editingFinished.connect(self._announce)
        self.lineEdit().textEdited.connect(lambda _: self.setStyleSheet(""))

    def set_candidates(
        self,
        ids: Sequence[int],
        labels: Sequence[str],
        probs: Sequence[float | None] | None = None,
    ) -> None:
        """Offer these tokens, the first one chosen; what was typed is dropped. A probability
        of None (or no probs) shows the label alone."""
        self.blockSignals(True)
        self.clear()
        for index, (token_id, label) in enumerate(zip(ids, labels, strict=True)):
            prob = None if probs is None else probs[index]
            text = label if prob is None else f"{label}   {_percent(prob)}"
            self.addItem(text, int(token_id))
        self.setCurrentIndex(0 if ids else -1)
        self.blockSignals(False)
        self.setStyleSheet("")
        self.problem = ""

    def reset(self) -> None:
        """No candidates and nothing typed."""
        self.set_candidates([], [])
        self.setEditText("")

    def show_token(self, token_id: int | None) -> None:
        """Choose this token: its candidate if it is one, else typed as the strips show it;
        None leaves the box empty."""
        index = -1 if token_id is None else self.findData(int(token_id))
        self.blockSignals(True)
        self.setCurrentIndex(index)
        if index < 0:
            self.setEditText("" if token_id is None else self.tokenizer.display(token_id))
        self.blockSignals(False)

    def token_id(self) -> int | None:
        """The picked candidate's id, or the id of the typed text if it is one token."""
        text = self.currentText()
        index = self.findText(text)
        if text and index >= 0:
            self.problem = ""
            return int(self.itemData(index))
        if not text:
            self.problem = f"Pick or type {self.role}."
            return None
        try:
            token_id = self.tokenizer.single_id(text, self.role)  # which reads the ␣ form
        except GPTCoreError as exc:
            self.problem = f"{exc}."
            return None
        self.problem = ""
        return token_id

    def _announce(self) -> None:
        token_id = self.token_id()
        self.setStyleSheet("" if token_id is not None else _INVALID_STYLE)
        if token_id is not None:
            self.tokenChanged.emit(token_id)


def _percent(p: float) -> str:
    """A probability as a percentage that stays readable when it is tiny."""
    percent = 100 * float(p)
    return f"{percent:.1f}%" if percent >= 0.1 else f"{percent:.2g}%"
