"""Induction and duplicate-token heads, found on a standard repeated sequence: <|endoftext|>
followed by n random tokens repeated twice. In the second copy every token has occurred before, n
positions back; a duplicate-token head attends to that earlier occurrence, an induction
head to the token right after it (what came next last time)."""

from __future__ import annotations

import numpy as np

from ..model import GPTModel
from ..model.tokenizer import ENDOFTEXT_ID
from ..probe import capture, stage_key
from .head_stats import head_summary

REPEAT_LENGTH = 50  # random tokens per copy
HEAD_TYPES = {
    "induction": "Induction: weight on the token after the previous occurrence (repeated sequence)",
    "duplicate_token": "Duplicate token: weight on the previous occurrence (repeated sequence)",
}


def repeated_sequence_ids(
    length: int = REPEAT_LENGTH, seed: int = 0, vocab_size: int = 50257
) -> list[int]:
    """<|endoftext|>, then `length` seeded random tokens, then the same tokens again."""
    high = min(vocab_size, ENDOFTEXT_ID)  # never the special token itself
    tokens = np.random.default_rng(seed).integers(0, high, size=length).tolist()
    return [ENDOFTEXT_ID, *tokens, *tokens]


def repeat_scores(weights: np.ndarray, length: int) -> dict[str, np.ndarray]:
    """weights [H, T, T] over a sequence of two copies of `length` tokens after one start
    token -> each score per head [H], averaged over the second copy's positions."""
    second = np.arange(length + 1, 2 * length + 1)  # destinations t in the second copy
    weights = weights.astype(np.float64)
    return {
        "induction": weights[:, second, second - length + 1].mean(-1),
        "duplicate_token": weights[:, second, second - length].mean(-1),
    }


def head_type_scores(
    model: GPTModel, length: int | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Every head's induction and duplicate-token score [L, H], its other scores on the
    same sequence (entropy, previous, first, self), and the sequence's ids. `length` random
    tokens per copy must fit the context twice after the start token; None is
    REPEAT_LENGTH, or as many as fit."""
    fits = (model.cfg.context_length - 1) // 2
    if fits < 2:
        raise ValueError("the model's context is too short for a repeated sequence")
    if length is None:
        length = min(REPEAT_LENGTH, fits)
    if not 2 <= length <= fits:
        raise ValueError(
            f"a repeat length of {length:,} does not fit: two copies and a start token must fit "
            f"the context of {model.cfg.context_length:,} tokens, so it is 2 to {fits:,}"
        )
    ids = repeated_sequence_ids(length, seed, model.cfg.vocab_size)
    trace = capture(model, ids, device=next(model.parameters()).device)
    rows = [
        repeat_scores(trace[stage_key("attn/weights", layer)], length)
        for layer in range(model.cfg.n_layers)
    ]
    scores = {name: np.stack([row[name] for row in rows]) for name in HEAD_TYPES}
    scores |= head_summary(trace)
    scores["ids"] = np.asarray(ids, dtype=np.int64)
    return scores
