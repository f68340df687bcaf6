"""GPT-2 byte-pair encoding through tiktoken, built from the files in resources/gpt2.

tiktoken would download these files on first use; the project ships them so the tokenizer
works with no network.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

from ..errors import PromptError

ENDOFTEXT = "<|endoftext|>"
ENDOFTEXT_ID = 50256

# The split pattern tiktoken uses for its "gpt2" encoding (the pre-tokenizer: words with
# their leading space, numbers, punctuation runs, whitespace runs); bpe.py splits with it too.
GPT2_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"

# The one message for a prompt with no text, wherever it is typed or passed.
EMPTY_PROMPT = "the prompt is empty or only whitespace; type some text first"

# How whitespace and control characters are drawn in a token's display string.
_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def resources_dir() -> Path:
    """The folder holding gpt2/: the installed package gpt_core.resources, or the repo's
    resources/ when running from a checkout; GPT_EXPLORER_RESOURCES overrides both."""
    override = os.environ.get("GPT_EXPLORER_RESOURCES")
    if override:
        return Path(override)
    try:  # a wheel ships the files as the package gpt_core.resources
        folders = importlib.import_module("gpt_core.resources").__path__
    except ModuleNotFoundError:  # a checkout: the repo's resources/ folder
        folders = []
    for folder in folders:
        if (Path(folder) / "gpt2" / "vocab.bpe").is_file():
            return Path(folder)
    return Path(__file__).resolve().parents[2] / "resources"


class Tokenizer:
    """encode/decode text and give each token a readable display string."""

    def __init__(self, encoding: tiktoken.Encoding):
        self._enc = encoding
        self.eot_id = ENDOFTEXT_ID
        self.size = encoding.n_vocab  # ids 0 .. size - 1 have a string

    def has_string(self, token_id: int) -> bool:
        """False for an id past GPT-2's vocabulary (a model padded to 50,304 ids has some)."""
        return 0 <= int(token_id) < self.size

    def encode(self, text: str) -> list[int]:
        # "<|endoftext|>" typed in a prompt is the special token, not an error.
        return self._enc.encode(text, allowed_special={ENDOFTEXT})

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; an id with no string reads as its display, #56857."""
        data = b"".join(
            self.token_bytes(i) if self.has_string(i) else self.display(i).encode() for i in ids
        )
        return data.decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The token's bytes; none for an id with no string."""
        if not self.has_string(token_id):
            return b""
        return self._enc.decode_single_token_bytes(int(token_id))

    def display(self, token_id: int) -> str:
        """The token as a label: spaces and newlines visible, broken UTF-8 as \\x escapes,
        an id with no string (past GPT-2's vocabulary) as #56857."""
        if not self.has_string(token_id):
            return f"#{int(token_id)}"
        if int(token_id) == self.eot_id:
            return ENDOFTEXT
        return display_bytes(self.token_bytes(token_id))

    @staticmethod
    def from_display(text: str) -> str:
        """The text a display string stands for: ␣ back to a space, ↵ to a newline, …"""
        for ch, shown in _VISIBLE.items():
            text = text.replace(shown, ch)
        return text

    def displays(self, ids: Sequence[int]) -> list[str]:
        return [self.display(i) for i in ids]

    def single_id(self, text: str, role: str = "token") -> int:
        """The id of text that must be exactly one token, as typed or in its display form
        (␣ for a space, as the window shows it); PromptError otherwise. `role` names it in
        the message ("the target", "the answer")."""
        ids = self.encode(self.from_display(text))
        if len(ids) != 1:
            raise PromptError(f"“{text}” is {len(ids)} tokens; {role} must be exactly one")
        return ids[0]


def display_bytes(data: bytes) -> str:
    """Bytes as a label: spaces and newlines visible (␣ ↵), other unprintable characters and
    broken UTF-8 as escapes (\\x9f)."""
    out = []
    for ch in data.decode("utf-8", errors="backslashreplace"):
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def vocabulary_note(vocab_size: int) -> str | None:
    """One line for a model with more ids than the tokenizer has strings, else None."""
    size = get_tokenizer().size
    if vocab_size <= size:
        return None
    return (
        f"the model has {vocab_size:,} token ids, the tokenizer strings for {size:,}: the "
        f"others show as #{size} … #{vocab_size - 1} and are never picked as a default token"
    )


def check_prompt_text(text: str) -> str:
    """The one rule for a prompt, in the window, the command line and capture(): it holds
    some text that is not whitespace. Returns the text; PromptError otherwise."""
    if not text.strip():
        raise PromptError(EMPTY_PROMPT)
    return text


def check_prompt_ids(ids: Sequence[int]) -> None:
    """check_prompt_text for token ids (ids past GPT-2's vocabulary are text enough)."""
    tokenizer = get_tokenizer()
    if all(0 <= i < tokenizer.eot_id for i in ids):
        check_prompt_text(tokenizer.decode(ids))


@functools.lru_cache(maxsize=1)
def get_tokenizer() -> Tokenizer:
    folder = resources_dir() / "gpt2"
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(folder / "vocab.bpe"),
        encoder_json_file=str(folder / "encoder.json"),
        vocab_bpe_hash=_VOCAB_BPE_SHA256,
        encoder_json_hash=_ENCODER_JSON_SHA256,
    )
    encoding = tiktoken.Encoding(
        name="gpt2-offline",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: ENDOFTEXT_ID},
        explicit_n_vocab=50257,
    )
    return Tokenizer(encoding)
