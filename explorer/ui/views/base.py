"""What every stage view shares, and the panel that stacks them under one header.

A view draws the Session's current trace for the selected section. Only the visible view
draws. A change of trace or section redraws it in full; a change of head, position, key
position or switches goes to `show_head`, `show_position`, `show_key` and `show_switches`,
which a view makes cheaper than a full draw where it can.
"""

from __future__ import annotations

import html
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.session.session import Session
from explorer.state.tour import current_step
from explorer.ui.dialogs.weight_matrices import show_weights
from explorer.ui.views.dropout import DropoutNote
from explorer.ui.widgets.layout import scrolled, size_by_current_page
from gpt_core.analysis.weight_matrices import section_matrices
from gpt_core.probe.sections import Section

_FULL_DRAW = frozenset({"model", "trace", "section"})
_TOUR_DRAW = _FULL_DRAW | {"tour"}
_DROPOUT_PARTS = frozenset({"gradients", "head", "position"})  # what the dropout note shows
EXPLAIN_FROM_PX = 600  # a panel shorter than this starts with the explanation folded away


class StageView(QWidget):
    """Subclasses set `name` (the `view` of the sections they draw) and implement `draw`."""

    name = ""
    exportRequested = Signal(str)  # "head", "layer" or "trace": the window opens its dialog

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session

    def draw(self, section: Section) -> None:
        raise NotImplementedError

    def redraw(self) -> None:
        """Draw again after one of the view's own controls changed."""
        if self.trace is not None:
            self.draw(self.session.section)

    def show_position(self) -> None:
        self.redraw()

    def show_head(self) -> None:
        self.redraw()

    def show_key(self) -> None:
        """The key position attention is explained for changed (only one view shows it)."""

    def show_switches(self) -> None:
        """The switches changed; the new run's trace follows with a full draw."""

    def show_part(self, part: str) -> None:
        """Show `part` of the view, where a tour step points (tour.py's TourStep.part)."""

    def clear(self) -> None:
        """No trace yet: show nothing stale."""

    # helpers for subclasses
    @property
    def trace(self):
        return self.session.trace

    def labels(self) -> list[str]:
        return self.trace.position_labels


class StagePanel(QWidget):
    """Header (title, what each stage computes with this prompt's shapes, formula,
    explanation) over a stack of views, one per kind of view, in a scroll area: on a small
    screen the view keeps its plots' minimum sizes and the panel scrolls, rather than
    squeezing them into strips."""

    job_kind = "run"  # the job Run (the prompt panel's) starts (a key of JOB_KINDS)
    run_button = None

    def __init__(self, session: Session, views: list[StageView], parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.title = QLabel()
        self.title.setWordWrap(True)  # the buttons beside it keep their room
        self.title.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.operations = _monospace("color: #212529; font-size: 11px;")  # a line per stage
        self.operations.setTextFormat(Qt.TextFormat.RichText)
        self.operations.setToolTip("What each stage computes, with this prompt's shapes")
        self.formula = _monospace("color: #364fc7;")
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        self.explanation.setStyleSheet("color: #495057; font-size: 11px;")
        # On a laptop screen the formulas and the paragraph cost the view a fifth of its
        # height: they fold away there (the shapes stay) until the person opens them, and
        # stay as they left them.
        self.explain = QToolButton(text="What this computes", checkable=True, checked=True)
        self.explain.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.explain.setAutoRaise(True)
        self.explain.toggled.connect(self._fold_explanation)
        self.explain.clicked.connect(lambda: setattr(self, "_explain_chosen", True))
        self._explain_chosen = False
        self._fold_explanation(True)
        self.weights = QToolButton(text="Weights…")
        self.weights.setToolTip(
            "This section's weight matrices as heatmaps, with their shapes, parameter counts "
            "and norms"
        )
        self.weights.clicked.connect(lambda: show_weights(self.session, self))
        self.notice = QLabel()  # e.g. "this block is skipped"
        self.notice.setWordWrap(True)  # one long line would widen the view past the screen
        self.notice.setStyleSheet("color: #c92a2a; font-weight: 600;")
        self.notice.hide()
        self.dropout = DropoutNote(session)  # one line in every view: what dropout does here
        self.placeholder = QLabel(
            "Type a prompt and press Run (Ctrl+Enter) to look inside the model."
        )
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)  # a narrow centre wraps it, scrolls nothing
        self.placeholder.setStyleSheet("color: #868e96; font-size: 14px;")
        self.views = views
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        for view in views:
            self.stack.addWidget(view)
        self._by_name = {view.name: view for view in views}
        self._lay_out()
        session.changed.connect(self._changed)
        session.promptChanged.connect(self.say_what_runs)
        session.busyChanged.connect(lambda *_: self.say_what_runs())
        self.refresh()

    def _lay_out(self) -> None:
        header = QFrame()
        header_layout = QVBoxLayout(header)
        header_layout.setContentsMargins(6, 4, 6, 4)
        header_layout.setSpacing(2)
        title_row = QHBoxLayout()
        title_row.addWidget(self.title, 1)
        title_row.addWidget(self.weights)
        title_row.addWidget(self.explain)
        header_layout.addLayout(title_row)
        for widget in (self.operations, self.formula, self.explanation, self.notice, self.dropout):
            header_layout.addWidget(widget)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(header)
        layout.addWidget(self.stack, 1)
        self.scroll = scrolled(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        size_by_current_page(self.stack)

    def _fold_explanation(self, shown: bool) -> None:
        self.formula.setVisible(shown)
        self.explanation.setVisible(shown)
        self.explain.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if not self._explain_chosen:
            self.explain.setChecked(self.height() >= EXPLAIN_FROM_PX)

    def view_for(self, name: str) -> StageView:
        return self._by_name[name]

    def current_view(self) -> StageView | None:
        widget = self.stack.currentWidget()
        return widget if isinstance(widget, StageView) else None

    def _changed(self, parts: frozenset[str]) -> None:
        self._draw_changes(parts)
        if parts & _TOUR_DRAW:
            self._show_tour_part()

    def _show_tour_part(self) -> None:
        """The part of the view the open tour's step points at, once the view is drawn."""
        state, view = self.session.state, self.current_view()
        if state.tour.open and view is not None:
            step = current_step(state)
            if state.section.name == step.section:
                view.show_part(step.part)

    def _draw_changes(self, parts: frozenset[str]) -> None:
        if parts & _FULL_DRAW:
            self.refresh()
            return
        if parts & _DROPOUT_PARTS:
            self.dropout.refresh()
        view = self.current_view()
        if "interventions" in parts:
            self._show_notice()
            if view is not None:
                view.show_switches()
        if view is None:
            return
        if "head" in parts:
            view.show_head()
        if "position" in parts:
            view.show_position()
        elif "key" in parts:  # a new position redraws with the key already
            view.show_key()

    def _show_notice(self) -> None:
        section = self.session.section
        skipped = section is not None and section.layer in self.session.interventions.skip_layers
        if skipped:
            self.notice.setText(
                f"Block {section.layer} is switched off: it passes its input through "
                "unchanged. The values shown are what it would have computed."
            )
        self.notice.setVisible(skipped)

    def refresh(self) -> None:
        section, trace = self.session.section, self.session.trace
        if section is None:
            self.title.setText("No model yet")
            self.weights.hide()
            return
        self.title.setText(section.title)
        self.weights.setVisible(bool(section_matrices(section.name)))
        stages = [s for s in (trace.stages if trace else []) if s.key in section.keys]
        self.operations.setText(operation_lines(s.operation for s in stages))
        formulas = [s.formula for s in stages] or [section.spec.formula]
        self.formula.setText("\n".join(dict.fromkeys(formulas)))
        explanations = [s.explanation for s in stages] or [section.spec.explanation]
        self.explanation.setText(" ".join(dict.fromkeys(explanations)))
        self._show_notice()
        self.dropout.refresh()
        if trace is None:
            self.say_what_runs()
            self.stack.setCurrentWidget(self.placeholder)
            for view in self.views:
                view.clear()
            return
        view = self._by_name[section.spec.view]
        self.stack.setCurrentWidget(view)
        view.draw(section)

    def say_what_runs(self) -> None:
        """Before the first run: the empty view says what is happening (the model loading or
        running) or, when nothing is, that a prompt in the box (one remembered from last
        time) waits for Run."""
        kinds = self.session.runner.kinds()
        if "run" in kinds:
            text = "Running the prompt… its stages appear here when the run is done."
        elif "load" in kinds:
            text = "Loading the model…"
        elif self.session.state.model is None:
            text = "No model is loaded: load one from the File or Model menu."
        elif self.session.state.prompt_text.strip():
            text = "Press Run (Ctrl+Enter) to run the prompt and look inside the model."
        else:
            text = "Type a prompt and press Run (Ctrl+Enter) to look inside the model."
        self.placeholder.setText(text)


def operation_lines(operations) -> str:
    """The stages' operations as rich text, one paragraph each, that wrap only between
    shapes (never inside "[14, 768]")."""
    paragraphs = []
    for text in dict.fromkeys(operations):
        kept_whole = re.sub(r"\[[^\]]*\]", lambda m: m.group().replace(" ", "\u00a0"), text)
        paragraphs.append(f"<div>{html.escape(kept_whole)}</div>")
    return "".join(paragraphs)


def _monospace(colour: str) -> QLabel:
    """A header label of monospace lines that wrap where the panel is narrow."""
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(f"font-family: 'DejaVu Sans Mono', monospace; {colour}")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
