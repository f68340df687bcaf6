"""Which piece of the prompt's BPE walk each position of a run's tokens came from.

A run's ids are the prompt's tokens, then any generated ones (sampled, never read from text),
maybe cropped to their last context-length. The Tokens view shows the walk of the prompt's
text and follows the selected position to its piece.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from gpt_core import get_tokenizer
from gpt_core.model.bpe import TextWalk, walk


@dataclass(frozen=True)
class PromptTokens:
    walk: TextWalk  # of the text the run read
    skip: int  # the walk's tokens cropped away before the run's first position
    n_positions: int  # the run's tokens
    starts: tuple[int, ...]  # each piece's first token, as a run position (negative: cropped)
    matches: bool  # the walk's ids are the run's (False: the run's ids were edited since)

    @property
    def n_generated(self) -> int:
        """The run's last tokens that were generated, not read from the text."""
        return max(0, self.n_positions - (len(self.walk.ids) - self.skip))

    def piece_at(self, position: int) -> int | None:
        """The index of the piece whose tokens hold run position `position`; None for a
        generated token."""
        if not self.walk.pieces or position >= self.n_positions - self.n_generated:
            return None
        return max(0, bisect.bisect_right(self.starts, position) - 1)

    def position_of(self, piece: int) -> int | None:
        """The run position of the piece's first token still in the run; None if cropped."""
        last = self.starts[piece] + len(self.walk.pieces[piece].ids) - 1
        return max(self.starts[piece], 0) if last >= 0 else None


def prompt_tokens(text: str, generated: Sequence[int], ids: Sequence[int]) -> PromptTokens:
    """The walk of `text`, lined up with a run of `ids` = its tokens + `generated`, perhaps
    cropped at the front. Ids that are not that (a run of other text) are walked from their
    decoded text instead, which gives the same ids unless generated tokens are in it."""
    ids = list(ids)
    result = walk(text)
    full = result.ids + list(generated)
    skip = len(full) - len(ids)
    matches = skip >= 0 and full[skip:] == ids
    if not matches:
        result, skip = walk(get_tokenizer().decode(ids)), 0
        matches = result.ids == ids
    starts = tuple(start - skip for start in result.first_tokens())
    return PromptTokens(result, skip, len(ids), starts, matches)
