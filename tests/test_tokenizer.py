from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_core.model.tokenizer import ENDOFTEXT, ENDOFTEXT_ID


def test_known_ids(tokenizer):
    assert tokenizer.encode("Hello, world") == [15496, 11, 995]
    assert tokenizer.encode("Every effort moves you") == [6109, 3626, 6100, 345]


def test_endoftext_typed_in_a_prompt_is_the_special_token(tokenizer):
    ids = tokenizer.encode(f"one{ENDOFTEXT}two")
    assert ids == [505, ENDOFTEXT_ID, 11545]
    assert tokenizer.decode(ids) == f"one{ENDOFTEXT}two"
    assert tokenizer.display(ENDOFTEXT_ID) == ENDOFTEXT


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_decode_encode_round_trip_for_any_unicode(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_display_strings_make_whitespace_visible(tokenizer):
    ids = tokenizer.encode(" Hello\n\tworld")
    assert tokenizer.displays(ids) == ["␣Hello", "↵", "⇥", "world"]


def test_display_of_a_partial_utf8_token_shows_escapes(tokenizer):
    # "😀" is more than one token; its first token is not valid UTF-8 on its own.
    ids = tokenizer.encode("😀")
    assert len(ids) > 1
    first = tokenizer.display(ids[0])
    assert "\\x" in first
    assert tokenizer.token_bytes(ids[0]) == "😀".encode()[: len(tokenizer.token_bytes(ids[0]))]


def test_every_token_has_a_nonempty_display_string(tokenizer):
    for token_id in range(0, 50257, 97):
        assert tokenizer.display(token_id)
