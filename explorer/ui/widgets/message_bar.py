"""An inline message above the views (no modal dialog to dismiss): what went wrong, and
where there is one, a button that does the obvious next thing."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton

_STYLES = {
    "info": "background:#e7f5ff; border:1px solid #74c0fc; color:#1864ab;",
    "warning": "background:#fff9db; border:1px solid #fcc419; color:#7c5800;",
    "error": "background:#fff5f5; border:1px solid #ff8787; color:#a61e1e;",
}


class MessageBar(QFrame):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.level = ""
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.action_button = QPushButton()
        self.action_button.hide()
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(close)
        self._action: Callable[[], None] | None = None
        self.action_button.clicked.connect(self._run_action)
        self.hide()

    def show_message(
        self, level: str, text: str, action_text: str = "", action: Callable[[], None] | None = None
    ) -> None:
        self.level = level
        self.setStyleSheet(
            f"MessageBar {{{_STYLES.get(level, _STYLES['info'])} border-radius:4px;}}"
        )
        self.label.setText(text)
        self._action = action
        self.action_button.setText(action_text)
        self.action_button.setVisible(bool(action_text and action))
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def clear(self) -> None:
        self.level = ""
        self.label.setText("")
        self._action = None
        self.hide()

    def _run_action(self) -> None:
        action = self._action
        self.clear()
        if action is not None:
            action()
