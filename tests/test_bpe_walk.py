"""gpt_core.model.bpe against GPT-2's original byte-level BPE, written here from openai/gpt-2's
encoder.py (bytes_to_unicode, get_pairs, bpe): the same merges in the same order, and the
ids tiktoken gives, for thousands of pieces of varied text."""

import json
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.state.tokens import prompt_tokens
from gpt_core.model import bpe
from gpt_core.model.tokenizer import ENDOFTEXT, ENDOFTEXT_ID, resources_dir

PIECES_WANTED = 2000


# ---------------------------------------------------------------- the reference, as openai wrote it
@cache
def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1))
    bs += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


@cache
def _bpe_ranks() -> dict[tuple[str, str], int]:
    text = (resources_dir() / "gpt2" / "vocab.bpe").read_text(encoding="utf-8")
    merges = [tuple(line.split()) for line in text.split("\n")[1:-1]]
    return dict(zip(merges, range(len(merges)), strict=True))


@cache
def _encoder() -> dict[str, int]:
    return json.loads((resources_dir() / "gpt2" / "encoder.json").read_text(encoding="utf-8"))


def _get_pairs(word):
    pairs = set()
    prev_char = word[0]
    for char in word[1:]:
        pairs.add((prev_char, char))
        prev_char = char
    return pairs


def reference_bpe(token: str) -> list[tuple[tuple[str, str], tuple[str, ...]]]:
    """openai's bpe(token), recording each round: (bigram, the word after the round). One
    round joins every occurrence of its bigram, left to right."""
    ranks, rounds = _bpe_ranks(), []
    word = tuple(token)
    pairs = _get_pairs(word)
    if not pairs:
        return rounds
    while True:
        bigram = min(pairs, key=lambda pair: ranks.get(pair, float("inf")))
        if bigram not in ranks:
            break
        first, second = bigram
        new_word = []
        i = 0
        while i < len(word):
            try:
                j = word.index(first, i)
                new_word.extend(word[i:j])
                i = j
            except ValueError:
                new_word.extend(word[i:])
                break
            if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                new_word.append(first + second)
                i += 2
            else:
                new_word.append(word[i])
                i += 1
        word = tuple(new_word)
        rounds.append((bigram, word))
        if len(word) == 1:
            break
        pairs = _get_pairs(word)
    return rounds


# ---------------------------------------------------------------- checks of one piece
def _rounds_of(walk: bpe.PieceWalk) -> list[tuple[tuple[str, str], tuple[str, ...]]]:
    """The walk's merges grouped as openai's rounds: a run of merges of the same pair."""
    rounds = []
    for merge, after in zip(walk.merges, walk.steps[1:], strict=True):
        pair = (merge.left, merge.right)
        if rounds and rounds[-1][0] == pair:
            rounds[-1] = (pair, after)
        else:
            rounds.append((pair, after))
    return rounds


def _check_each_step(walk: bpe.PieceWalk) -> None:
    """Every step joins the leftmost adjacent pair of lowest rank, and nothing else."""
    ranks = _bpe_ranks()
    for before, merge, after in zip(walk.steps[:-1], walk.merges, walk.steps[1:], strict=True):
        pair_ranks = [ranks.get(pair, len(ranks)) for pair in zip(before, before[1:], strict=False)]
        lowest = min(pair_ranks)
        at = pair_ranks.index(lowest)
        assert (merge.left, merge.right, merge.rank) == (before[at], before[at + 1], lowest)
        assert merge.position == at
        assert after == (*before[:at], before[at] + before[at + 1], *before[at + 2 :])
    last = walk.steps[-1]
    assert not any(pair in ranks for pair in zip(last, last[1:], strict=False)), (
        "a pair was left unmerged"
    )


def _check_piece(walk: bpe.PieceWalk) -> None:
    if walk.special:
        assert walk.text == ENDOFTEXT and walk.ids == (ENDOFTEXT_ID,) and not walk.merges
        return
    table = _bytes_to_unicode()
    token = "".join(table[b] for b in walk.text.encode("utf-8"))
    assert walk.data == walk.text.encode("utf-8")
    assert walk.steps[0] == tuple(token)
    assert len(walk.steps) == len(walk.merges) + 1
    _check_each_step(walk)
    rounds = reference_bpe(token)
    assert _rounds_of(walk) == rounds
    final = rounds[-1][1] if rounds else tuple(token)
    assert walk.tokens == final
    assert walk.ids == tuple(_encoder()[symbol] for symbol in final)


# ---------------------------------------------------------------- varied text
FRAGMENTS = st.one_of(
    st.sampled_from(
        [
            " the",
            "The",
            " cat",
            "Hello",
            " world",
            "don't",
            " we're",
            " I'll",
            "'s",
            "'ve",
            "'d",
            "'m",
            "'t",
            "'re",
            "'ll",
            " Mary",
            "naïve",
            " café",
            "Straße",
            "東京",
            "日本語",
            " привет",
            "مرحبا",
            " 😀",
            "🎉🎉",
            "👩‍👩‍👧",
            " 🇫🇷",
            "\u200b",
            "\u3000",
            "\xa0",
            ENDOFTEXT,
            "\r\n",
            "\n\n\n",
            "\t",
            "  ",
            "    ",
            " \n ",
            "...",
            "!!!",
            "?!",
            "###",
            " --",
            "==>",
            " $",
            "%",
            "(",
            ")",
            " 42",
            "1234567890",
            "3.14159",
            " 2024",
            "0x1f",
        ]
    ),  # fmt: skip
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12),
    st.text(alphabet=" \t\n\r\x0b\x0c", min_size=1, max_size=6),
    st.text(alphabet="0123456789", min_size=1, max_size=40),
    st.text(alphabet="!@#$%^&*()_+-=[]{}|;:,.<>/?~`\\\"'", min_size=1, max_size=30),
)
TEXTS = st.lists(FRAGMENTS, min_size=6, max_size=14).map("".join)


def test_the_walk_is_gpt2s_bpe_and_gives_tiktokens_ids(tokenizer):
    seen = []

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(TEXTS)
    def check(text):
        walk = bpe.walk(text)
        assert "".join(piece.text for piece in walk.pieces) == text
        for piece in walk.pieces:
            _check_piece(piece)
        assert walk.ids == tokenizer.encode(text)
        seen.append(len(walk.pieces))

    check()
    assert sum(seen) >= PIECES_WANTED, f"only {sum(seen)} pieces were checked"


# ---------------------------------------------------------------- known cases
def test_a_word_merges_by_rank_as_vocab_bpe_lists_them():
    walk = bpe.walk_piece(" there")
    assert walk.steps[0] == ("Ġ", "t", "h", "e", "r", "e")
    ranks = _bpe_ranks()
    assert [m.rank for m in walk.merges] == [ranks[(m.left, m.right)] for m in walk.merges]
    assert [(m.left, m.right) for m in walk.merges][:3] == [("Ġ", "t"), ("h", "e"), ("r", "e")]
    assert walk.tokens == ("Ġthere",) and walk.ids == (612,)


def test_the_byte_map_writes_a_space_as_G_dot_and_covers_every_byte():
    table = bpe.byte_to_char()
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("a")] == "a"
    assert len(set(table)) == 256 and all(ch.isprintable() for ch in table)
    assert table == tuple(_bytes_to_unicode()[b] for b in range(256))


def test_endoftext_typed_in_text_is_a_piece_of_its_own(tokenizer):
    text = f"one{ENDOFTEXT}  two{ENDOFTEXT}"
    walk = bpe.walk(text)
    assert [p.text for p in walk.pieces] == ["one", ENDOFTEXT, " ", " two", ENDOFTEXT]
    assert walk.pieces[1].special and walk.pieces[1].steps == ((ENDOFTEXT,),)
    assert walk.ids == tokenizer.encode(text)


def test_a_lone_surrogate_is_read_as_tiktoken_reads_it(tokenizer):
    assert bpe.walk("a\udcffb").ids == tokenizer.encode("a\udcffb")


def test_symbols_show_as_the_app_shows_tokens():
    assert bpe.symbol_display("Ġworld") == "␣world"
    assert bpe.symbol_display("Ċ") == "↵"
    assert bpe.symbol_display("ðŁ") == "\\xf0\\x9f"  # half of an emoji's UTF-8
    assert bpe.symbol_bytes("ĠðŁĺĢ") == " 😀".encode()


# ---------------------------------------------------------------- the run's positions → pieces
def test_positions_of_a_run_find_their_piece_also_when_generated_or_cropped():
    text = " Hello world 😀"
    walk = bpe.walk(text)
    ids = walk.ids  # [␣Hello, ␣world, ␣\xf0\x9f\x98, \x80]
    plain = prompt_tokens(text, (), ids)
    assert plain.matches and plain.n_generated == 0
    assert [plain.piece_at(p) for p in range(len(ids))] == [0, 1, 2, 2]
    assert [plain.position_of(i) for i in range(3)] == [0, 1, 2]
    generated = prompt_tokens(text, (11, 12), [*ids, 11, 12])
    assert generated.n_generated == 2 and generated.piece_at(len(ids)) is None
    cropped = prompt_tokens(text, (11,), [*ids[2:], 11])  # the run kept its last 3 tokens
    assert cropped.skip == 2 and cropped.matches
    assert cropped.piece_at(0) == 2 and cropped.position_of(0) is None
    other = prompt_tokens("something else", (), ids)  # a run of other text: its ids read again
    assert other.matches and other.walk.text == text
