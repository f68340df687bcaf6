"""Interactions in the window that went wrong (issue 11): each test is one reproduction."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

PROMPT = "The cat sat on the mat"


def _backward(qtbot, window):
    with qtbot.waitSignal(window.session.gradientsChanged, timeout=GUI_TIMEOUT_MS):
        window.actions_by_name["backward"].trigger()
    wait_idle(qtbot, window.session)


def test_a_typed_target_in_display_form_is_the_token_it_shows(window, qtbot):
    session, view = window.session, window.gradients
    wait_for_run(qtbot, session, PROMPT)
    view.one_token.setChecked(True)
    view.target.setEditText("␣sounding")
    _backward(qtbot, window)
    target = (session.position, session.tokenizer.single_id(" sounding"))
    assert session.gradients.backward.target == target
    assert "exactly one" not in window.message_bar.text()


def test_the_target_follows_the_position_and_the_prompt(window, qtbot):
    session, view = window.session, window.gradients
    wait_for_run(qtbot, session, PROMPT)
    view.one_token.setChecked(True)
    view.target.setEditText("␣sounding")
    session.select_position(1)  # the typed target was for the last position
    ids = session.trace.token_ids.tolist()
    assert view.target.token_id() == ids[2]  # the prompt's own next token
    view.target.setEditText("␣sounding")
    wait_for_run(qtbot, session, "A dog ran")
    top = int(session.trace["logits/topk_ids"][-1, 0])
    assert view.target.token_id() == top
    _backward(qtbot, window)
    assert session.gradients.backward.target == (session.position, top)


def test_a_target_of_several_tokens_is_a_message_and_nothing_runs(window, qtbot):
    session, view = window.session, window.gradients
    wait_for_run(qtbot, session, PROMPT)
    view.one_token.setChecked(True)
    view.target.setEditText("two words")
    window.actions_by_name["backward"].trigger()
    wait_idle(qtbot, session)
    assert "is 2 tokens; the target must be exactly one" in window.message_bar.text()
    assert session.gradients is None


def _focus_editor(qtbot, window):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    window.prompt.editor.setFocus()
    qtbot.waitUntil(window.prompt.editor.hasFocus)
    qtbot.keyClicks(window.prompt.editor, " on")


def test_alt_arrows_step_through_stages_from_the_prompt_box(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    _focus_editor(qtbot, window)
    session.select_section(2)
    qtbot.keyClick(window.prompt.editor, Qt.Key.Key_Right)  # the text cursor's, as typing wants
    assert session.selection.section == 2
    qtbot.keyClick(window.prompt.editor, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert session.selection.section == 3
    qtbot.keyClick(window.prompt.editor, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert session.selection.section == 2
    assert window.prompt.editor.hasFocus() and window.prompt.text().count(" on") == 2


def test_escape_leaves_the_prompt_box_and_the_arrows_step_again(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    _focus_editor(qtbot, window)
    session.select_section(2)
    qtbot.keyClick(window.prompt.editor, Qt.Key.Key_Escape)
    focused = QApplication.focusWidget()
    assert focused is not window.prompt.editor and window.tabs.isAncestorOf(focused)
    qtbot.keyClick(focused, Qt.Key.Key_Right)
    assert session.selection.section == 3


def test_clicking_a_view_takes_the_focus_from_the_prompt_box(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    _focus_editor(qtbot, window)
    session.select_section(2)
    title = window.stage_panel.title
    qtbot.mouseClick(title, Qt.MouseButton.LeftButton)
    assert not window.prompt.editor.hasFocus()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Right)
    assert session.selection.section == 3


def test_moving_through_the_tree_with_the_keys_opens_each_stage(window, qtbot):
    session, navigator = window.session, window.navigator
    wait_for_run(qtbot, session, PROMPT)
    session.select_section(0)
    navigator.tree.setFocus()
    last = len(session.sections) - 1
    for key, opened in (
        (Qt.Key.Key_Down, 0),  # onto the heading "Block 0": it waits for a click
        (Qt.Key.Key_Down, 1),
        (Qt.Key.Key_End, last),
        (Qt.Key.Key_Up, last - 1),
        (Qt.Key.Key_Home, 0),
    ):
        qtbot.keyClick(navigator.tree, key)
        assert session.selection.section == opened
        assert window.stage_panel.title.text() == session.section.title
    assert navigator.tree.currentItem() is navigator.section_items[0]
