"""Interactions in the window that went wrong (issue 11): each test is one reproduction."""

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
