"""What every stage view shares, and the panel that stacks them under one header.

A view draws the Session's current trace for the selected step. Only the visible view
redraws; the others are marked stale and redraw when they are shown.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QStackedWidget, QVBoxLayout, QWidget

from gpt_core.export import token_labels

from ..session import Session
from ..steps import Step


class StageView(QWidget):
    """Subclasses set `kinds` (the step kinds they draw) and implement `draw`."""

    kinds: tuple[str, ...] = ()
    exportRequested = Signal(str)  # "head", "layer" or "trace": the window opens its dialog

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session

    def draw(self, step: Step) -> None:
        raise NotImplementedError

    def redraw(self) -> None:
        """Draw again after one of the view's own controls changed."""
        if self.trace is not None:
            self.draw(self.session.step)

    def clear(self) -> None:
        """No trace yet: show nothing stale."""

    # helpers for subclasses
    @property
    def trace(self):
        return self.session.trace

    def labels(self) -> list[str]:
        return token_labels(self.trace.token_strings)


class StagePanel(QWidget):
    """Header (title, shape, formula, explanation) over a stack of views, one per kind."""

    def __init__(self, session: Session, views: list[StageView], parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.title = QLabel()
        self.title.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.formula = QLabel()
        self.formula.setStyleSheet("font-family: 'DejaVu Sans Mono', monospace; color: #364fc7;")
        self.formula.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        self.explanation.setStyleSheet("color: #495057; font-size: 11px;")
        self.notice = QLabel()  # e.g. "this block is skipped"
        self.notice.setStyleSheet("color: #c92a2a; font-weight: 600;")
        self.notice.hide()
        header = QFrame()
        header_layout = QVBoxLayout(header)
        header_layout.setContentsMargins(6, 4, 6, 4)
        header_layout.setSpacing(2)
        for widget in (self.title, self.formula, self.explanation, self.notice):
            header_layout.addWidget(widget)
        self.stack = QStackedWidget()
        self.placeholder = QLabel(
            "Type a prompt and press Run (Ctrl+Enter) to look inside the model."
        )
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #868e96; font-size: 14px;")
        self.stack.addWidget(self.placeholder)
        self.views = views
        self._by_kind: dict[str, StageView] = {}
        for view in views:
            self.stack.addWidget(view)
            for kind in view.kinds:
                self._by_kind[kind] = view
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(header)
        layout.addWidget(self.stack, 1)
        session.traceChanged.connect(self.refresh)
        session.selectionChanged.connect(self.refresh)
        session.interventionsChanged.connect(self.refresh)
        self.refresh()

    def view_for(self, kind: str) -> StageView:
        return self._by_kind[kind]

    def current_view(self) -> StageView | None:
        widget = self.stack.currentWidget()
        return widget if isinstance(widget, StageView) else None

    def refresh(self) -> None:
        session, step = self.session, self.session.step
        if step is None:
            self.title.setText("No model yet")
            return
        trace = session.trace
        self.title.setText(step.title)
        stages = [s for s in (trace.stages if trace else []) if s.key in step.keys]
        self.formula.setText("\n".join(dict.fromkeys(s.formula for s in stages)))
        self.explanation.setText(" ".join(dict.fromkeys(s.explanation for s in stages)))
        skipped = step.layer is not None and step.layer in session.interventions.skip_layers
        self.notice.setText(
            f"Block {step.layer} is switched off: it passes its input through "
            "unchanged. The values shown are what it would have computed."
        )
        self.notice.setVisible(skipped)
        if trace is None:
            self.stack.setCurrentWidget(self.placeholder)
            for view in self.views:
                view.clear()
            return
        view = self._by_kind[step.kind]
        self.stack.setCurrentWidget(view)
        view.draw(step)
