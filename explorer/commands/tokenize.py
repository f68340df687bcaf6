"""`gpt-explorer tokenize`: a text's byte-pair encoding step by step — its pre-tokenizer
pieces, each piece's bytes and every merge, lowest rank first, to the ids. Needs no model."""

from __future__ import annotations

import argparse
import json

from explorer.commands.options import add_prompt_options, read_prompt_file
from gpt_core import PromptError
from gpt_core.model.bpe import PieceWalk, TextWalk, counted, walk

HELP = "a text's BPE merges step by step, piece by piece, to GPT-2's token ids (no model)"
LEGEND = "symbols as vocab.bpe writes them: one character per byte, Ġ a space, Ċ a newline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_prompt_options(parser, text_option="--text")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object: {"ids", "pieces": [{"text", "bytes", "steps", "merges", '
        '"ids"}]}',
    )


def run(args) -> int:
    text = args.text if args.prompt_file is None else read_prompt_file(args.prompt_file)
    if not text:
        raise PromptError("the text is empty; give some text to tokenize")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # argv bytes that are no UTF-8 arrive as surrogates
        raise PromptError("the text holds bytes that are not UTF-8") from exc
    result = walk(text)
    print(json.dumps(as_json(result)) if args.json else "\n".join(plain_lines(result)))
    return 0


def as_json(result: TextWalk) -> dict:
    return {
        "ids": result.ids,
        "pieces": [
            {
                "text": piece.text,
                "bytes": list(piece.data),
                "steps": [list(step) for step in piece.steps],
                "merges": [[m.left, m.right, m.rank] for m in piece.merges],
                "ids": list(piece.ids),
            }
            for piece in result.pieces
        ],
    }


def plain_lines(result: TextWalk) -> list[str]:
    n_bytes = sum(len(piece.data) for piece in result.pieces)
    n_merges = sum(len(piece.merges) for piece in result.pieces)
    lines = [
        f"{len(result.text):,} characters → {counted(len(result.pieces), 'piece')}, "
        f"{counted(n_bytes, 'byte')}, {counted(n_merges, 'merge')} → "
        f"{counted(len(result.ids), 'token')}",
        f"({LEGEND})",
    ]
    for number, piece in enumerate(result.pieces, 1):
        lines += ["", *_piece_lines(number, piece)]
    return lines


def _piece_lines(number: int, piece: PieceWalk) -> list[str]:
    quoted = json.dumps(piece.text, ensure_ascii=False)
    if piece.special:
        return [
            f"piece {number} {quoted} · the special token, never merged",
            f"    ids {piece.ids[0]}",
        ]
    raw = " ".join(f"{b:02x}" for b in piece.data)
    head = (
        f"piece {number} {quoted} · {counted(len(piece.data), 'byte')} {raw} · "
        f"{counted(len(piece.merges), 'merge')} → {counted(len(piece.ids), 'token')}"
    )
    pairs = [f"{m.left} + {m.right}" for m in piece.merges]
    widths = (len(str(len(pairs))), max((len(p) for p in pairs), default=0))
    lines = [head, _step_row(widths, "", "", "", piece.steps[0])]
    for index, (pair, merge) in enumerate(zip(pairs, piece.merges, strict=True), 1):
        lines.append(
            _step_row(widths, str(index), pair, f"rank {merge.rank:>5}  →", piece.steps[index])
        )
    lines.append(f"    ids {' '.join(str(i) for i in piece.ids)}")
    return lines


def _step_row(widths: tuple[int, int], step: str, pair: str, rank: str, symbols) -> str:
    """One line of a piece's steps, columns aligned: step, pair, rank, the symbols after."""
    return f"    {step:>{widths[0]}}  {pair:{widths[1]}}  {rank:13}  {' '.join(symbols)}"
