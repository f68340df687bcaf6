"""The guided tour's panel: the step's heading, what it opened, its sentences written from
this run (explorer/state/tour.py), notes, and Back / Next / Leave. It only reads the state
and calls the Session's tour setters; the section, head and pair each step shows are state,
so the views follow them as they follow a click."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.session.session import Session
from explorer.state.tour import TOUR_STEPS, TourPage, current_step, tour_page
from explorer.ui.settings import read_text
from explorer.ui.widgets.layout import scrolled

# The parts of the state a page is written from: a change of any rewrites it.
_PAGE_PARTS = frozenset({"tour", "trace", "gradients", "model", "prompt", "section", "sampling"})
PANEL_MIN_PX = 260


class TourPanel(QWidget):
    """Shown while the tour is open; Leave (or Esc, see TourDock) closes it."""

    def __init__(self, session: Session, actions: dict[str, QAction], parent=None):
        super().__init__(parent)
        self.session = session
        self.actions = actions
        self.setMinimumWidth(PANEL_MIN_PX)
        self.heading = QLabel()
        self.heading.setStyleSheet("font-size: 14px; font-weight: 600;")
        self.heading.setWordWrap(True)
        self.where = QLabel()  # what the step opened, in the app's names
        self.where.setWordWrap(True)
        self.where.setStyleSheet("color: #495057; font-size: 11px;")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setStyleSheet("font-size: 13px;")
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #a5530a; font-size: 12px;")
        self.action_button = QPushButton()  # the step's action: Run, Backward step
        self.action_button.clicked.connect(self._act)
        self.back = QPushButton("◂ Back")
        self.back.setToolTip("The previous step (Alt+B)")
        self.next = QPushButton("Next ▸")
        self.next.setToolTip("The next step (Alt+N)")
        self.leave = QPushButton("Leave")
        self.leave.setToolTip("Close the tour (Esc); F1 resumes it at this step")
        self.back.clicked.connect(lambda: session.move_tour(-1))
        self.next.clicked.connect(lambda: session.move_tour(+1))
        self.leave.clicked.connect(session.close_tour)
        # Window-wide while the panel shows (Qt checks the parent's visibility); Esc: see
        # TourDock.
        for keys, slot in (("Alt+N", self.next.click), ("Alt+B", self.back.click)):
            QShortcut(QKeySequence(keys), self).activated.connect(slot)
        for label in (self.heading, self.where, self.text, self.notes):
            label.setTextFormat(Qt.TextFormat.PlainText)  # token strings such as <|endoftext|>
        self._lay_out()
        session.changed.connect(self._changed)

    def _lay_out(self) -> None:
        """The step's words scroll; the buttons stay in sight below them on any screen."""
        body = QWidget()
        words = QVBoxLayout(body)
        words.setContentsMargins(8, 6, 8, 6)
        for widget in (self.heading, self.where, self.notes, self.text, self.action_button):
            words.addWidget(widget)
        words.addStretch(1)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(8, 2, 8, 6)
        buttons.addWidget(self.back)
        buttons.addWidget(self.next)
        buttons.addStretch(1)
        buttons.addWidget(self.leave)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        area = scrolled(body)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # words wrap
        layout.addWidget(area, 1)
        layout.addLayout(buttons)

    def _changed(self, parts: frozenset[str]) -> None:
        if parts & _PAGE_PARTS and self.session.state.tour.open:
            self.show_page()

    def show_page(self) -> None:
        """Write the current step from the state's run."""
        state = self.session.state
        page = tour_page(state)
        self.page = page
        self.heading.setText(f"Step {page.number} of {len(TOUR_STEPS)} · {page.step.title}")
        self.where.setText(self._where(page))
        self.text.setText(page.said.text if page.said else "")
        self.text.setVisible(page.said is not None)
        self.notes.setText("\n\n".join(page.notes))
        self.notes.setVisible(bool(page.notes))
        action = self._action_name(page)
        self.action_button.setVisible(bool(action))
        if action:
            self.action_button.setText(self.actions[action].text().replace("&", ""))
        self.back.setEnabled(page.number > 1)
        self.next.setEnabled(page.number < len(TOUR_STEPS))

    def _where(self, page: TourPage) -> str:
        state, section = self.session.state, self.session.state.section
        if section is None:
            return ""
        place = "Backward step tab" if page.step.tab == "backward" else section.title
        trace = state.trace
        if trace is None or section.name != "attention_steps":
            return f"Showing: {place}"
        t, s = state.position, state.key_position
        tokens = trace.token_strings
        return (
            f"Showing: {place} · head {state.selection.head} · t = {t} “{tokens[t]}”, "
            f"s = {s} “{tokens[s]}”"
        )

    def _action_name(self, page: TourPage) -> str:
        """The step's own action, or Run while there is no run to read."""
        if self.session.state.trace is None:
            return "run" if self.session.state.prompt_text.strip() else ""
        return page.step.action

    def _act(self) -> None:
        self.actions[self._action_name(self.page)].trigger()


class TourDock(QDockWidget):
    """The tour's panel in a dock tabbed with `beside` (so it never covers the view it points
    at), shown only while the tour is open. Each step shows the window's tab it needs, and
    the step reached is kept in the settings, so the next opening (F1) resumes there."""

    def __init__(self, session: Session, actions: dict[str, QAction], settings, beside):
        window = beside.parentWidget()
        super().__init__("Tour", window)
        self.setObjectName("dock_tour")
        self.session, self.settings = session, settings
        self.tabs: QTabWidget = window.tabs
        self.panel = TourPanel(session, actions)
        self.setWidget(self.panel)
        window.addDockWidget(window.dockWidgetArea(beside), self)
        window.tabifyDockWidget(beside, self)
        step = read_text(settings, "tour/step", "0")
        session.resume_tour_at(int(step) if step.isdigit() else 0)
        session.tourChanged.connect(self._follow)
        # Esc leaves from the views and the panel; in the prompt box it first gives the keys
        # back to the views (a window-wide Esc would make the box's Esc ambiguous to Qt).
        for owner in (self.tabs, self.panel):
            escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), owner)
            escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            escape.activated.connect(session.close_tour)
        self.hide()

    def setVisible(self, visible: bool) -> None:
        """Shown only while the tour is open (a restored window layout does not open it)."""
        super().setVisible(visible and self.session.state.tour.open)

    def _follow(self) -> None:
        state = self.session.state
        self.settings.setValue("tour/step", str(state.tour.step))
        if not state.tour.open:
            self.hide()
            return
        self.show()
        self.raise_()
        wanted = current_step(state).tab
        for index in range(self.tabs.count()):
            if self.tabs.tabText(index) == wanted:
                self.tabs.setCurrentIndex(index)

    def closeEvent(self, event) -> None:
        """The dock's close button leaves the tour, as Leave does."""
        super().closeEvent(event)
        if self.session.state.tour.open:
            self.session.close_tour()
