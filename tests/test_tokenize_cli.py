"""`tokenize`: its JSON holds every piece's bytes, steps and merges, checked here against
vocab.bpe, encoder.json and tiktoken read directly; the plain output has a block per piece;
bad input is one `error:` line."""

import json

import pytest

from gpt_core.model.tokenizer import ENDOFTEXT, ENDOFTEXT_ID, resources_dir
from tests.cli_helpers import assert_one_error_line, run_cli

TEXT = f"Hello world's 😀\n\n  12345678 !!!{ENDOFTEXT}x"


@pytest.fixture(scope="module")
def tables():
    folder = resources_dir() / "gpt2"
    lines = (folder / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:-1]
    ranks = {tuple(line.split()): rank for rank, line in enumerate(lines)}
    encoder = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    return ranks, encoder


def _json(*args, **kwargs) -> dict:
    result = run_cli("tokenize", *args, "--json", **kwargs)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return json.loads(result.stdout)


def test_json_holds_each_piece_from_bytes_to_ids(tokenizer, tables):
    ranks, encoder = tables
    out = _json("--text", TEXT)
    assert set(out) == {"ids", "pieces"}
    assert out["ids"] == tokenizer.encode(TEXT)
    assert "".join(p["text"] for p in out["pieces"]) == TEXT
    assert [i for p in out["pieces"] for i in p["ids"]] == out["ids"]
    for piece in out["pieces"]:
        assert set(piece) == {"text", "bytes", "steps", "merges", "ids"}
        assert bytes(piece["bytes"]) == piece["text"].encode()
        steps, merges = piece["steps"], piece["merges"]
        assert len(steps) == len(merges) + 1
        if piece["text"] == ENDOFTEXT:
            assert steps == [[ENDOFTEXT]] and piece["ids"] == [ENDOFTEXT_ID]
            continue
        assert "".join(steps[0]) == "".join(_byte_char(b) for b in piece["bytes"])
        assert len(steps[0]) == len(piece["bytes"])
        for before, (left, right, rank), after in zip(steps, merges, steps[1:], strict=False):
            assert ranks[(left, right)] == rank
            at = next(i for i in range(len(before) - 1) if before[i : i + 2] == [left, right])
            assert after == before[:at] + [left + right] + before[at + 2 :]
        assert piece["ids"] == [encoder[symbol] for symbol in steps[-1]]


def _byte_char(byte: int) -> str:
    """GPT-2's character for a byte, by its rule: printable Latin-1 stays, the rest move to
    U+0100 on, in order."""
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    if byte in keep:
        return chr(byte)
    return chr(0x100 + sum(1 for b in range(byte) if b not in keep))


def test_plain_output_has_a_block_per_piece_with_its_steps():
    result = run_cli("tokenize", "--text", "Hello world")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "11 characters → 2 pieces, 11 bytes, 9 merges → 2 tokens"
    blocks = result.stdout.split("\n\n")[1:]
    assert [b.splitlines()[0] for b in blocks] == [
        'piece 1 "Hello" · 5 bytes 48 65 6c 6c 6f · 4 merges → 1 token',
        'piece 2 " world" · 6 bytes 20 77 6f 72 6c 64 · 5 merges → 1 token',
    ]
    world = blocks[1].splitlines()
    assert world[1].split() == ["Ġ", "w", "o", "r", "l", "d"]
    assert world[2].split() == ["1", "Ġ", "+", "w", "rank", "10", "→", "Ġw", "o", "r", "l", "d"]
    assert world[-2].split()[-1] == "Ġworld" and world[-1].split() == ["ids", "995"]


def test_a_prompt_file_and_stdin_read_as_text(tmp_path, tokenizer):
    path = tmp_path / "prompt.txt"
    path.write_text("café\tnaïve\n", encoding="utf-8")  # the final newline is dropped
    assert _json("--prompt-file", str(path))["ids"] == tokenizer.encode("café\tnaïve")
    assert _json("--prompt-file", "-", stdin="  \n")["ids"] == tokenizer.encode("  ")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--text", ""], "the text is empty"),
        (["--text", "a\udcffb"], "not UTF-8"),
        (["--prompt-file", "{binary}"], "is not UTF-8 text"),
        (["--prompt-file", "{empty}"], "the text is empty"),
        (["--prompt-file", "{missing}"], "cannot read the prompt file"),
        (["--text", "a", "--preset", "tiny"], "unrecognized arguments"),
        ([], "one of the arguments --text --prompt-file is required"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, args, fragment):
    places = {
        "binary": tmp_path / "latin1.txt",
        "empty": tmp_path / "empty.txt",
        "missing": tmp_path / "missing.txt",
    }
    places["binary"].write_bytes("café".encode("latin-1"))
    places["empty"].write_text("\n")
    result = run_cli("tokenize", *(a.format(**places) for a in args))
    assert_one_error_line(result, fragment)
