"""Interactions in the window that went wrong (issue 11): each test is one reproduction."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QTabWidget

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
        (Qt.Key.Key_Down, 1),  # from the tokens to the embeddings
        (Qt.Key.Key_Down, 1),  # onto the heading "Block 0": it waits for a click
        (Qt.Key.Key_Down, 2),
        (Qt.Key.Key_End, last),
        (Qt.Key.Key_Up, last - 1),
        (Qt.Key.Key_Home, 0),
    ):
        qtbot.keyClick(navigator.tree, key)
        assert session.selection.section == opened
        assert window.stage_panel.title.text() == session.section.title
    assert navigator.tree.currentItem() is navigator.section_items[0]


def _generate(qtbot, session):
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.generate_next()
    wait_idle(qtbot, session)


def test_generation_at_the_context_slides_on_and_uses_each_runs_logits(window, qtbot):
    session = window.session
    limit = session.config.context_length
    prompt = " ".join(["cat"] * (limit - 1))  # one token short of the context
    wait_for_run(qtbot, session, prompt)
    assert session.trace.n_tokens == limit - 1
    for _ in range(4):
        expected = int(session.trace["logits/topk_ids"][-1, 0])  # greedy, of the run shown
        _generate(qtbot, session)
        assert session.state.generated[-1] == expected
        assert session.trace.n_tokens == min(limit, limit - 1 + len(session.state.generated))
        assert session.trace.token_ids.tolist() == session.token_ids()[-limit:]
    assert len(session.state.generated) == 4


def test_generation_refuses_to_continue_a_run_of_another_prompt(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    window.prompt.set_text("A dog ran")  # typed, not run
    session.generate_next()
    wait_idle(qtbot, session)
    assert session.state.generated == ()
    assert "run this one first" in window.message_bar.text()


def test_a_second_generate_before_the_first_run_is_in_waits(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    said = []
    session.message.connect(lambda level, text: said.append(text))
    session.generate_next()
    session.generate_next()  # the first token's run has not come back
    wait_idle(qtbot, session)
    assert len(session.state.generated) == 1
    assert any("still on its way" in text for text in said)


def test_the_generate_panel_shows_the_prompt_of_the_run(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    _generate(qtbot, session)
    too_long = "word " * (session.config.context_length + 5)
    window.prompt.set_text(too_long)
    window.actions_by_name["run"].trigger()  # refused: the views keep the old run
    wait_idle(qtbot, session)
    assert "this model sees at most" in window.message_bar.text()
    assert window.generation.text.toPlainText().startswith(PROMPT)
    assert "word word" not in window.generation.text.toPlainText()


def test_an_export_is_titled_with_the_prompt_of_the_run_shown(window, qtbot, monkeypatch, tmp_path):
    import explorer.export.attention as exporting
    from explorer.ui.dialogs.export import ExportRequest

    titled = []
    monkeypatch.setattr(
        exporting, "export_head", lambda *args: titled.append(args[-1]) or [tmp_path / "x"]
    )
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    window.prompt.set_text("An edited prompt, not run")
    window.export(ExportRequest("head", tmp_path, ("png",)))
    assert titled == [PROMPT]


def test_tiny_probabilities_in_the_switches_panel_keep_their_digits(window, qtbot):
    session, panel = window.session, window.effect
    wait_for_run(qtbot, session, PROMPT)
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.toggle_head(0, 1)
    wait_idle(qtbot, session)
    result, position = session.result, session.position
    for column, trace in ((1, result.baseline), (3, result.trace)):
        for row in range(panel.table.rowCount()):
            shown = float(panel.table.item(row, column).text())
            p = float(trace["logits/topk_probs"][position][row])
            assert abs(shown - p) <= 0.006 * p  # random weights: p ≈ 2e-5, not "0.0000"
    comparison = result.comparison
    for label, value in ((panel.delta_loss, comparison.delta_loss), (panel.kl, comparison.kl_last)):
        shown = float(label.text().split()[0])
        assert abs(shown - value) <= 0.006 * abs(value) + 5e-5
        assert label.text() not in ("+0.0000", "-0.0000", "0.00000 nats")


def test_the_parameter_table_keeps_the_sort_fits_its_columns_and_shows_zero_weights(window, qtbot):
    session, table = window.session, window.gradients.params
    wait_for_run(qtbot, session, PROMPT)
    _backward(qtbot, window)
    header = table.horizontalHeader()
    assert header.sortIndicatorSection() == 2  # largest gradient first, to begin with
    table.sortItems(0, Qt.SortOrder.AscendingOrder)  # as a click on the heading does
    _backward(qtbot, window)
    names = [table.item(row, 0).text() for row in range(table.rowCount())]
    assert names == sorted(names)
    assert header.sortIndicatorSection() == 0
    zero = {p.name for p in session.gradients.backward.params if p.weight_norm == 0}
    assert zero  # the random model's biases start at zero
    for row in range(table.rowCount()):
        text = table.item(row, 4).text()
        assert text != "inf"
        assert (text == "—") == (table.item(row, 0).text() in zero)
    longest = max(names, key=table.fontMetrics().horizontalAdvance)
    assert table.columnWidth(0) >= table.fontMetrics().horizontalAdvance(longest)
    window.tabs.setCurrentWidget(window.gradients)
    window.gradients.findChild(QTabWidget).setCurrentWidget(table)
    window.resize(700, 900)  # the table narrower than its columns: it scrolls sideways
    qtbot.waitUntil(lambda: table.horizontalScrollBar().maximum() > 0)


def test_patching_answers_typed_as_the_strips_show_them_are_those_tokens(window):
    from dataclasses import replace

    session, setup = window.session, window.patching.setup
    clean = "When Mary and John went to the store, John gave a drink to"
    corrupted = clean.replace("store, John", "store, Mary")
    settings = replace(session.state.patching, clean_text=clean, corrupted_text=corrupted)
    session.patching.set_settings(settings)
    setup.answer.setEditText("␣Mary")
    setup.distractor.setEditText("␣John")
    setup.push()
    assert (session.state.patching.answer, session.state.patching.distractor) == (" Mary", " John")
    setup.show_settings()  # the state read back: the boxes show the tokens as the strips do
    assert (setup.answer.currentText(), setup.distractor.currentText()) == ("␣Mary", "␣John")
    setup.answer.setEditText("")
    setup.push()
    assert session.state.patching.answer == ""  # the default: the clean run's top-1


def test_the_target_stays_when_only_the_switches_change(window, qtbot):
    session, view = window.session, window.gradients
    wait_for_run(qtbot, session, PROMPT)
    view.one_token.setChecked(True)
    view.target.setEditText("␣sounding")
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.toggle_head(0, 1)
    wait_idle(qtbot, session)
    assert view.target.token_id() == session.tokenizer.single_id(" sounding")
    view.target.setCurrentIndex(2)
    picked = view.target.token_id()
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.toggle_head(0, 1)
    wait_idle(qtbot, session)
    assert view.target.token_id() == picked


def test_the_backward_tab_fits_its_texts_and_clears_what_a_new_run_drops(window, qtbot):
    """The placeholder wraps in a narrow tab, Play/Pause use glyphs the font has, and after
    Generate the emptied gradient panel keeps no heading or axis label of the old step."""
    from PySide6.QtGui import QFontMetrics

    session, view = window.session, window.gradients
    window.resize(1280, 800)
    window.tabs.setCurrentWidget(view)
    wait_for_run(qtbot, session, PROMPT)
    assert view.empty.isVisible() and view.empty.wordWrap()
    assert view.empty.height() >= view.empty.heightForWidth(view.empty.width())  # not cut
    _backward(qtbot, window)
    left = view.flow_plot.getPlotItem().getAxis("left")
    assert left._tickLevels[0] and view.stage_note.text()
    font = QFontMetrics(view.play_button.font())
    for playing in (True, False):
        view.toggle_play()
        assert view.play_button.text() == ("Pause" if playing else "Play")
        assert not view.play_button.icon().isNull()
        assert all(font.inFontUcs4(ord(ch)) for ch in view.play_button.text())
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.generate_next()
    wait_idle(qtbot, session)
    assert session.gradients is None
    bottom = view.flow_plot.getPlotItem().getAxis("bottom")
    assert left._tickLevels == [[]] and bottom._tickLevels == [[]]  # no old numbers or names
    assert view.stage_note.text() == ""
    assert view.stage_view.currentWidget() is view.empty
