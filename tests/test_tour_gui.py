"""The tour in the window: Help ▸ Tour (F1) opens its panel; Next, Back (buttons and keys)
walk the steps, each showing its tab, section and part of the view; Esc leaves; F1 and a
new window resume where it was left; it runs the prompt it needs; the backward step runs
from its button; a new run rewrites the page."""

from PySide6.QtCore import QPoint, Qt

from explorer.state.tour import TOUR_STEPS, focus_of, tour_page
from gpt_core.probe.sections import SECTIONS
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

PROMPT = "Every effort moves you forward"


def _panel(win):
    return win.tour_dock.panel


def _shown(win):
    """(tab title, section name, view name) the window shows."""
    view = win.stage_panel.current_view()
    return (
        win.tabs.tabText(win.tabs.currentIndex()),
        win.session.section.name,
        view.name if view else None,
    )


def _open(win, qtbot):
    win.actions_by_name["tour"].trigger()
    wait_idle(qtbot, win.session)
    qtbot.waitUntil(lambda: win.tour_dock.isVisible(), timeout=GUI_TIMEOUT_MS)


def test_next_walks_every_step_to_its_tab_section_and_part(shared_window, qtbot):
    win, session = shared_window, shared_window.session
    wait_for_run(qtbot, session, PROMPT)
    session.go_to_tour_step(0)
    _open(win, qtbot)
    panel = _panel(win)
    for index, step in enumerate(TOUR_STEPS):
        assert session.state.tour.step == index
        assert _shown(win) == (step.tab, step.section, SECTIONS[step.section].view)
        assert panel.heading.text().startswith(f"Step {index + 1} of {len(TOUR_STEPS)}")
        assert panel.text.text() == session_page_text(session)
        view = win.stage_panel.current_view()
        if step.section == "embeddings":
            assert view.choice.chosen == step.part
        if step.section == "attention_steps":  # its step scrolled to the top of the steps
            qtbot.waitUntil(lambda view=view, step=step: _scrolled_to(view, int(step.part)))
        assert panel.back.isEnabled() == (index > 0)
        assert panel.next.isEnabled() == (index < len(TOUR_STEPS) - 1)
        if index < len(TOUR_STEPS) - 1:
            qtbot.mouseClick(panel.next, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.back, Qt.MouseButton.LeftButton)
    assert session.state.tour.step == len(TOUR_STEPS) - 2
    session.close_tour()


def _scrolled_to(view, number):
    bar = view.steps_area.verticalScrollBar()
    top = view.steps.panels[number - 1].mapTo(view.column, QPoint(0, 0)).y()
    return bar.value() == min(top, bar.maximum())


def session_page_text(session):
    return tour_page(session.state).said.text


def test_keys_leave_and_resume(shared_window, qtbot):
    win, session = shared_window, shared_window.session
    wait_for_run(qtbot, session, PROMPT)
    session.go_to_tour_step(3)
    _open(win, qtbot)
    win.activateWindow()
    qtbot.keyClick(win.stage_panel, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
    assert session.state.tour.step == 4
    qtbot.keyClick(win.stage_panel, Qt.Key.Key_B, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(win.stage_panel, Qt.Key.Key_B, Qt.KeyboardModifier.AltModifier)
    assert session.state.tour.step == 2
    win.prompt.editor.setFocus()
    qtbot.keyClick(win.prompt.editor, Qt.Key.Key_Escape)  # the box gives the keys back first
    assert session.state.tour.open and not win.prompt.editor.hasFocus()
    qtbot.keyClick(win.stage_panel, Qt.Key.Key_Escape)
    assert not session.state.tour.open and not win.tour_dock.isVisible()
    session.select_section(5)  # wander off, then come back with F1
    _open(win, qtbot)
    assert session.state.tour.step == 2
    assert _shown(win)[1] == TOUR_STEPS[2].section
    win.tour_dock.close()  # the dock's own close button leaves too
    assert not session.state.tour.open


def test_the_backward_step_runs_from_its_button_and_is_described(shared_window, qtbot):
    win, session = shared_window, shared_window.session
    wait_for_run(qtbot, session, PROMPT)
    session.go_to_tour_step(len(TOUR_STEPS) - 1)
    _open(win, qtbot)
    panel = _panel(win)
    assert panel.action_button.isVisible() and "Ctrl+B" in panel.text.text()
    with qtbot.waitSignal(session.gradientsChanged, timeout=GUI_TIMEOUT_MS):
        qtbot.mouseClick(panel.action_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, session)
    assert "backward() reached" in panel.text.text()
    assert win.tabs.currentWidget() is win.gradients
    session.close_tour()


def test_a_new_run_rewrites_the_open_page(shared_window, qtbot):
    win, session = shared_window, shared_window.session
    wait_for_run(qtbot, session, PROMPT)
    session.go_to_tour_step(next(i for i, s in enumerate(TOUR_STEPS) if s.name == "softmax"))
    _open(win, qtbot)
    assert "forward" in _panel(win).text.text()
    win.prompt.set_text("A story about cats")
    assert "changed since this run" in _panel(win).notes.text()
    wait_for_run(qtbot, session)
    text = _panel(win).text.text()
    assert "cats" in text and "forward" not in text
    assert text == session_page_text(session)
    focus = focus_of(session.trace)  # the step's view moved to the new run's head and pair
    assert (session.selection.head, session.position, session.state.key_position) == (
        focus.head,
        focus.query,
        focus.key,
    )
    assert "noise" in _panel(win).notes.text()  # the test model is random
    session.close_tour()


def test_the_tour_runs_the_prompt_it_needs_and_a_new_window_resumes(window, qtbot):
    session = window.session
    assert session.trace is None
    window.prompt.set_text(PROMPT)
    session.go_to_tour_step(6)
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        _open(window, qtbot)
    wait_idle(qtbot, session)
    assert _panel(window).text.isVisible() and "“" in _panel(window).text.text()
    assert session.section.name == TOUR_STEPS[6].section
    window.close()
    from explorer.app import build_window
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings

    args = gui_parser().parse_args(["--preset", "tiny", "--device", "cpu", "--seed", "1"])
    again, second = build_window(args, open_settings())
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(lambda: second.model is not None, timeout=GUI_TIMEOUT_MS)
    assert not again.tour_dock.isVisible()  # the restored layout does not open it
    _open(again, qtbot)
    assert second.state.tour.step == 6
    again.close()
