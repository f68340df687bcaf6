"""The Tokens section: first in the walk, its chips are the prompt's pieces with their bytes
and merge counts, and a click on a chip (here or in the token strip under the prompt) opens
that piece's merges: one row per merge with the pair and rank vocab.bpe gives, the bytes one
column each."""

import pytest
from PySide6.QtCore import Qt

from explorer.state.app_state import find_section
from gpt_core.model import bpe
from gpt_core.model.tokenizer import resources_dir
from tests.conftest import wait_for_run

PROMPT = "Hi 😀  there\n\n\tcafé<|endoftext|> 31415926535 !!!"


@pytest.fixture(scope="module")
def ranks():
    lines = (resources_dir() / "gpt2" / "vocab.bpe").read_text(encoding="utf-8").split("\n")
    return {tuple(line.split()): rank for rank, line in enumerate(lines[1:-1])}


@pytest.fixture
def view(shared_window, qtbot):
    session = shared_window.session
    wait_for_run(qtbot, session, PROMPT)
    session.select_section(find_section(session.state, "tokens", None))
    return shared_window.stage_panel.view_for("tokens")


def _click(qtbot, strip, index: int) -> None:
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip.chip_rect(index).center())


def test_tokens_come_first_in_the_walk_and_the_tree(shared_window, view):
    session = shared_window.session
    assert [s.name for s in session.sections[:2]] == ["tokens", "embeddings"]
    assert shared_window.stage_panel.current_view() is view
    assert shared_window.stage_panel.title.text() == "Tokens, from text"
    item = shared_window.navigator.section_items[0]
    assert item.text(0) == "text → tokens (BPE)" and item.text(1) == f"[{session.trace.n_tokens}]"


def test_the_chips_are_the_pieces_with_their_bytes_and_merges(view):
    walk = bpe.walk(PROMPT)
    assert len(walk.pieces) == 10
    assert [p.text for p in view.pieces.pieces] == [p.text for p in walk.pieces]
    assert view.pieces.tokens[1] == "␣😀" and view.pieces.tokens[4] == "↵↵"
    assert view.pieces.notes[3] == "6 B · 5 merges"  # " there": one token
    assert view.pieces.notes[6] == "5 B · 2 merges → 3 tokens"  # "café"
    assert view.pieces.notes[7] == "special token"
    one_token = [i for i, p in enumerate(walk.pieces) if len(p.ids) == 1]
    fills = [view.pieces.chip_fill(i).name() for i in range(len(walk.pieces))]
    assert {i for i, f in enumerate(fills) if f == fills[3]} == set(one_token)
    assert view.summary.text().startswith(f"{len(PROMPT)} characters → 10 pieces → ")


@pytest.mark.parametrize("index", [1, 3, 6, 8])  # emoji, word, broken UTF-8 merged, digits
def test_clicking_a_chip_opens_its_merges(shared_window, view, qtbot, ranks, index):
    session, walk = shared_window.session, bpe.walk(PROMPT)
    piece = walk.pieces[index]
    _click(qtbot, view.pieces, index)
    assert view.piece == index and session.position == walk.first_tokens()[index]
    merges = "1 merge" if len(piece.merges) == 1 else f"{len(piece.merges)} merges"
    assert f"· {merges} →" in view.piece_title.text()
    model = view.steps.model()
    assert model.rowCount() == len(piece.merges) + 1
    for row, merge in enumerate(piece.merges, 1):
        pair = f"{bpe.symbol_display(merge.left)} + {bpe.symbol_display(merge.right)}"
        assert model.index(row, 1).data() == pair
        assert model.index(row, 2).data() == f"{ranks[(merge.left, merge.right)]:,}"
    last = model.index(len(piece.merges), 3).data(Qt.ItemDataRole.UserRole)[0]
    assert last == [bpe.symbol_display(s) for s in piece.tokens]
    byte_map = view.byte_map.model()
    assert byte_map.columnCount() == len(piece.data)
    assert byte_map.index(0, 0).data() == f"{piece.data[0]:02x}"
    assert byte_map.index(1, 0).data() == bpe.byte_to_char()[piece.data[0]]


def test_a_token_under_the_prompt_opens_its_piece(shared_window, view, qtbot):
    strip = shared_window.prompt.strip
    _click(qtbot, strip, 2)  # the emoji's second token: a piece of two
    assert view.piece == 1
    _click(qtbot, strip, 13)  # inside the number
    assert view.piece == 8
    assert view.steps.model().rowCount() == 9
    _click(qtbot, strip, 10)  # <|endoftext|>: a piece with no merges
    assert view.piece == 7 and view.steps.model().rowCount() == 1
    assert not view.byte_map.isVisible()
