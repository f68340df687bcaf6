"""GPT-2's byte-pair encoding, one merge at a time: what tiktoken does in one call, spelled out
so a person can watch it.

text ──► pre-tokenizer pieces (GPT2_PATTERN) ──► each piece's UTF-8 bytes ──► one character
per byte (GPT-2's byte-to-character map: why vocab.bpe writes a space as Ġ) ──► merges: the
adjacent pair of symbols with the lowest rank in vocab.bpe is joined, again and again, until
no adjacent pair is in the table ──► each final symbol's id in encoder.json.

`<|endoftext|>` typed in the text is the special token: a piece of its own, with no merges.
The tables are read from resources/gpt2 on first use and kept.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import regex

from .tokenizer import ENDOFTEXT, ENDOFTEXT_ID, GPT2_PATTERN, display_bytes, resources_dir

_SPLIT = regex.compile(GPT2_PATTERN)


@dataclass(frozen=True)
class Merge:
    """One step of a piece's walk: `left` and `right`, adjacent, became one symbol."""

    left: str  # byte-mapped symbol, as vocab.bpe and encoder.json write it
    right: str
    rank: int  # line of the pair in vocab.bpe, 0 for the first merge ("Ġ t")
    position: int  # index of the joined symbol among the symbols after the step


@dataclass(frozen=True)
class PieceWalk:
    """One pre-tokenizer piece from its bytes to its ids."""

    text: str  # the piece as it stands in the prompt ("␣world" is " world")
    data: bytes  # its UTF-8 bytes
    steps: tuple[tuple[str, ...], ...]  # steps[0]: one byte-mapped character per byte;
    # steps[i]: the symbols after merge i; steps[-1]: the tokens
    merges: tuple[Merge, ...]  # len(steps) - 1 of them, in order
    ids: tuple[int, ...]  # encoder.json's id of each final symbol
    special: bool = False  # the special token <|endoftext|>, never merged

    @property
    def tokens(self) -> tuple[str, ...]:
        return self.steps[-1]


@dataclass(frozen=True)
class TextWalk:
    """A whole text: its pieces in order (their texts join to the text)."""

    text: str
    pieces: tuple[PieceWalk, ...]

    @property
    def ids(self) -> list[int]:
        return [i for piece in self.pieces for i in piece.ids]

    def first_tokens(self) -> list[int]:
        """The index, among all the text's tokens, of each piece's first token."""
        starts, count = [], 0
        for piece in self.pieces:
            starts.append(count)
            count += len(piece.ids)
        return starts


@functools.lru_cache(maxsize=1)
def byte_to_char() -> tuple[str, ...]:
    """GPT-2's map from a byte to one printable character. The bytes that print as
    themselves keep their character ("a" is "a"); the others (controls, space, 0x7f–0xa0,
    0xad) take the characters from U+0100 on, in byte order: space (0x20) becomes "Ġ"
    (U+0120), newline (0x0a) "Ċ". So every token is a string of printable characters."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars, moved = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[byte] = chr(byte)
        else:
            chars[byte] = chr(0x100 + moved)
            moved += 1
    return tuple(chars[byte] for byte in range(256))


@functools.lru_cache(maxsize=1)
def _char_to_byte() -> dict[str, int]:
    return {char: byte for byte, char in enumerate(byte_to_char())}


def symbol_bytes(symbol: str) -> bytes:
    """The bytes a byte-mapped symbol stands for ("Ġworld" → b" world")."""
    if symbol == ENDOFTEXT:
        return symbol.encode()
    table = _char_to_byte()
    return bytes(table[char] for char in symbol)


@functools.lru_cache(maxsize=65536)
def symbol_display(symbol: str) -> str:
    """A symbol as the app shows tokens: "Ġworld" → "␣world", a broken UTF-8 part as \\xf0."""
    return ENDOFTEXT if symbol == ENDOFTEXT else display_bytes(symbol_bytes(symbol))


@functools.lru_cache(maxsize=1)
def merge_ranks() -> dict[tuple[str, str], int]:
    """vocab.bpe's merges: (left, right) → rank, 0 for the first line after the header."""
    lines = (resources_dir() / "gpt2" / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    pairs = (tuple(line.split(" ")) for line in lines[1:] if line)
    return {pair: rank for rank, pair in enumerate(pairs)}


@functools.lru_cache(maxsize=1)
def encoder() -> dict[str, int]:
    """encoder.json: byte-mapped token string → id."""
    with open(resources_dir() / "gpt2" / "encoder.json", encoding="utf-8") as f:
        return json.load(f)


def pieces(text: str) -> list[str]:
    """The pre-tokenizer's pieces of `text`: `<|endoftext|>` on its own, the rest split by
    GPT-2's pattern. Joined, they are the text."""
    out = []
    for index, part in enumerate(text.split(ENDOFTEXT)):
        if index:
            out.append(ENDOFTEXT)
        out.extend(_SPLIT.findall(part))
    return out


@functools.lru_cache(maxsize=8192)
def walk_piece(piece: str) -> PieceWalk:
    """Every merge of one piece, lowest rank first, until no adjacent pair is in vocab.bpe."""
    if piece == ENDOFTEXT:
        return PieceWalk(piece, piece.encode(), ((piece,),), (), (ENDOFTEXT_ID,), special=True)
    data = piece.encode("utf-8")
    chars = byte_to_char()
    symbols = [chars[byte] for byte in data]
    steps, merges = [tuple(symbols)], []
    ranks = merge_ranks()
    while len(symbols) > 1:
        rank, at = _lowest_pair(symbols, ranks)
        if at < 0:
            break
        merges.append(Merge(symbols[at], symbols[at + 1], rank, at))
        symbols[at : at + 2] = [symbols[at] + symbols[at + 1]]
        steps.append(tuple(symbols))
    vocabulary = encoder()
    ids = tuple(vocabulary[symbol] for symbol in symbols)
    return PieceWalk(piece, data, tuple(steps), tuple(merges), ids)


def _lowest_pair(symbols: list[str], ranks: dict[tuple[str, str], int]) -> tuple[int, int]:
    """(rank, index) of the leftmost adjacent pair of lowest rank; index -1 if none has one."""
    best, at = len(ranks), -1
    for i in range(len(symbols) - 1):
        rank = ranks.get((symbols[i], symbols[i + 1]), best)
        if rank < best:
            best, at = rank, i
    return best, at


def counted(n: int, noun: str) -> str:
    """ "1 merge", "5 merges": how the walk's counts are told."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


@functools.lru_cache(maxsize=16)
def walk(text: str) -> TextWalk:
    """The whole text's walk; its ids are tiktoken's for the text (with <|endoftext|>
    allowed). A lone surrogate (no character at all) becomes U+FFFD first, as tiktoken
    does."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return TextWalk(text, tuple(walk_piece(piece) for piece in pieces(text)))
