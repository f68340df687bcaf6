"""The prompt editor, its token count, and the token strip under it."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from explorer.session.session import Session
from explorer.ui.widgets.token_strip import TokenStrip, scrolled


class PromptPanel(QWidget):
    leaveRequested = Signal()  # Esc in the editor: give the keys back to the views

    def __init__(self, session: Session, run_action, parent=None):
        super().__init__(parent)
        self.session = session
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText(
            "Type a prompt, e.g. “Every effort moves you”, then Ctrl+Enter"
        )
        self.editor.setFixedHeight(64)
        self.editor.textChanged.connect(self._text_changed)
        leave = QShortcut(QKeySequence(Qt.Key.Key_Escape), self.editor)
        leave.setContext(Qt.ShortcutContext.WidgetShortcut)
        leave.activated.connect(self.leaveRequested)
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Run the prompt (Ctrl+Enter)")
        self.run_button.clicked.connect(run_action.trigger)
        self.count = QLabel()
        self.count.setStyleSheet("color:#495057;")
        self.count.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        widest = self.count.fontMetrics().horizontalAdvance("99,999 / 99,999 tokens")
        self.count.setMinimumWidth(widest + 4)  # the count never cut as it grows
        self.strip = TokenStrip()
        self.strip.positionClicked.connect(session.select_position)
        scroll = scrolled(self.strip)
        self.strip_scroll = scroll
        side = QVBoxLayout()
        side.addWidget(self.run_button)
        side.addWidget(self.count)
        top = QHBoxLayout()
        top.addWidget(self.editor, 1)
        top.addLayout(side)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addLayout(top)
        layout.addWidget(scroll)
        # Counting tokens on every keystroke of a long prompt would lag the editor.
        self._count_timer = QTimer(self, singleShot=True, interval=150)
        self._count_timer.timeout.connect(self._update_count)
        session.traceChanged.connect(self._show_tokens)
        session.positionChanged.connect(lambda: self.strip.set_selected(session.position))
        session.modelChanged.connect(self._update_count)
        session.promptChanged.connect(self._show_prompt)

    def set_text(self, text: str) -> None:
        self.editor.setPlainText(text)

    def _show_prompt(self) -> None:
        """The state's prompt text, when it changed elsewhere (generated text adopted)."""
        if self.editor.toPlainText() != self.session.state.prompt_text:
            self.editor.setPlainText(self.session.state.prompt_text)

    def text(self) -> str:
        return self.editor.toPlainText()

    def _text_changed(self) -> None:
        self.session.set_prompt(self.editor.toPlainText())
        self._count_timer.start()

    def _update_count(self) -> None:
        n = len(self.session.tokenizer.encode(self.editor.toPlainText()))
        limit = self.session.config.context_length if self.session.config else 0
        over = limit and n > limit
        self.count.setText(f"{n:,} / {limit:,} tokens" if limit else f"{n:,} tokens")
        self.count.setStyleSheet("color:#c92a2a; font-weight:600;" if over else "color:#495057;")

    def _show_tokens(self) -> None:
        trace = self.session.trace
        if trace is None:
            self.strip.set_tokens([], [], [])
            return
        ids = trace.token_ids.tolist()
        tokenizer = self.session.tokenizer
        n_generated = len(self.session.state.generated)
        marked = set(range(len(ids) - n_generated, len(ids))) if n_generated else set()
        self.strip.set_tokens(
            list(trace.token_strings), ids, [tokenizer.token_bytes(i) for i in ids], marked
        )
        self.strip.set_selected(self.session.position)
