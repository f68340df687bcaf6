"""Induction and duplicate-token heads, found on a standard repeated sequence: <|endoftext|>
followed by n random tokens repeated twice. In the second copy every token has occurred before, n
positions back; a duplicate-token head attends to that earlier occurrence, an induction
head to the token right after it (what came next last time).

The same two scores on any prompt (prompt_head_scores): at each query whose token occurred
earlier in the prompt, the weight on those earlier occurrences (duplicate token) and on the
tokens right after them (induction), averaged over such queries; undefined (NaN) where the
prompt repeats no token. On the repeated sequence they equal the scores above."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import GPTModel
from ..model.tokenizer import ENDOFTEXT_ID
from ..probe import Trace, capture, stage_key
from .head_stats import head_summary

REPEAT_LENGTH = 50  # random tokens per copy
PROMPT_HEAD_SCORES = {
    "prompt_induction": "Induction on this prompt: weight on the tokens after earlier "
    "occurrences of the query's token",
    "prompt_duplicate_token": "Duplicate token on this prompt: weight on earlier occurrences "
    "of the query's token",
}
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


@dataclass(frozen=True)
class RepeatPairs:
    """(query, key) pairs of a prompt's repeats, each query's keys counted once."""

    duplicate: tuple[np.ndarray, np.ndarray]  # keys: earlier occurrences of the query's token
    induction: tuple[np.ndarray, np.ndarray]  # keys: the tokens right after those (before it)


def repeat_pairs(ids) -> RepeatPairs:
    """Where each query's token occurred before it, and the positions right after those
    occurrences (the query itself excluded: a token repeated at once is not induction)."""
    ids = np.asarray(ids)
    same = (ids[:, None] == ids[None, :]) & np.tri(len(ids), k=-1, dtype=bool)  # [T, T] s < t
    after = np.zeros_like(same)
    after[:, 1:] = same[:, :-1]  # key s + 1 for each earlier occurrence s
    after &= np.tri(len(ids), k=-1, dtype=bool)  # s + 1 < t
    return RepeatPairs(np.nonzero(same), np.nonzero(after))


def _per_query_mean(weights: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """weights [H, T, T] -> [H]: each query's summed weight on its keys, averaged over the
    queries that have any (NaN for none)."""
    queries, keys = pairs
    if not len(queries):
        return np.full(weights.shape[0], np.nan)
    picked = weights[:, queries, keys].astype(np.float64)  # [H, pairs]
    rows, index = np.unique(queries, return_inverse=True)
    per_query = np.zeros((weights.shape[0], len(rows)))
    np.add.at(per_query, (slice(None), index), picked)
    return per_query.mean(-1)


def prompt_repeat_scores(weights: np.ndarray, ids) -> dict[str, np.ndarray]:
    """weights [H, T, T] of a prompt with token ids [T] -> each prompt score per head [H]."""
    pairs = repeat_pairs(ids)
    return {
        "prompt_induction": _per_query_mean(weights, pairs.induction),
        "prompt_duplicate_token": _per_query_mean(weights, pairs.duplicate),
    }


def prompt_head_scores(trace: Trace) -> dict[str, np.ndarray]:
    """Every head's induction and duplicate-token score on the trace's own prompt [L, H]
    (NaN where no query qualifies)."""
    ids = trace.token_ids
    rows = [
        prompt_repeat_scores(trace[stage_key("attn/weights", layer)], ids)
        for layer in range(trace.config.n_layers)
    ]
    return {name: np.stack([row[name] for row in rows]) for name in PROMPT_HEAD_SCORES}
