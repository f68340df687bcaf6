"""The token picker: candidates picked by label, typed tokens read from their display form."""

import pytest

from explorer.ui.widgets.token_picker import TokenPicker


@pytest.fixture
def picker(qtbot, tokenizer):
    widget = TokenPicker(tokenizer, "the target")
    qtbot.addWidget(widget)
    return widget


def test_a_picked_candidate_is_its_id(picker, tokenizer):
    ids = tokenizer.encode(" cat dog")
    picker.set_candidates(ids, tokenizer.displays(ids), [0.5, 0.0000123])
    assert picker.token_id() == ids[0]
    assert picker.itemText(0) == "␣cat   50.0%" and picker.itemText(1) == "␣dog   0.0012%"
    picker.setCurrentIndex(1)
    assert picker.token_id() == ids[1]


@pytest.mark.parametrize("typed, text", [("␣sounding", " sounding"), ("↵", "\n"), ("cat", "cat")])
def test_typed_display_text_is_the_token_it_shows(picker, tokenizer, typed, text):
    picker.setEditText(typed)
    assert picker.token_id() == tokenizer.single_id(text)


def test_typed_text_of_several_tokens_is_refused_with_a_message(picker):
    picker.setEditText("two words")
    assert picker.token_id() is None
    assert "is 2 tokens; the target must be exactly one" in picker.problem
    picker.setEditText("")
    assert picker.token_id() is None and picker.problem == "Pick or type the target."


def test_reset_drops_candidates_and_typed_text(picker, tokenizer):
    picker.set_candidates([262], ["␣the"])
    picker.setEditText("cat")
    picker.reset()
    assert picker.count() == 0 and picker.currentText() == ""


def test_token_changed_is_emitted_for_a_valid_token_only(picker, qtbot, tokenizer):
    seen = []
    picker.tokenChanged.connect(seen.append)
    picker.setEditText("␣the")
    picker.lineEdit().editingFinished.emit()
    picker.setEditText("two words")
    picker.lineEdit().editingFinished.emit()
    assert seen == [tokenizer.single_id(" the")]
    assert "border" in picker.styleSheet()  # the invalid text is marked


def test_show_token_picks_its_candidate_or_types_its_display(picker, tokenizer):
    picker.set_candidates([262, 257], ["␣the", "␣a"], [0.5, 0.25])
    picker.show_token(257)
    assert picker.currentIndex() == 1 and picker.token_id() == 257
    sounding = tokenizer.single_id(" sounding")
    picker.show_token(sounding)
    assert picker.currentText() == "␣sounding" and picker.token_id() == sounding
    picker.show_token(None)
    assert picker.currentText() == "" and picker.token_id() is None
