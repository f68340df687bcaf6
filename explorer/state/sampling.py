"""The generation settings (temperature, top-k, top-p, seed) and what the sampling views read
from the state: the logits at the selected position and the token drawn from them (part of
the AppState in app_state.py; nothing here imports Qt or runs the model)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float = 0.0  # 0: greedy (argmax)
    top_k: int | None = None  # keep only the k most likely tokens (None: all)
    seed: int = 0  # the n-th generated token is sampled with seed + n
    top_p: float | None = None  # keep the smallest set whose probability reaches p (None: all)


@dataclass(frozen=True)
class Draw:
    token_id: int  # the token Generate drew
    settings: GenerationSettings  # what it was drawn with
    probability: float  # its probability in the distribution it was drawn from


def position_logits(state, position: int, vocab: int) -> np.ndarray | None:
    """A position's logits [vocab] of the run shown: the trace's own at the last position;
    elsewhere the logit lens's last row (the last block's output through final_norm and
    out_head), None until that is read. Only ids the tokenizer has a string for (`vocab`),
    as generation draws; the array itself when it has no others."""
    trace = state.trace
    if trace is None:
        return None
    lens = state.logit_lens
    if position == trace.n_tokens - 1:
        logits = trace["logits/last"]
    elif lens is not None and lens.position == position:
        logits = lens.logits
    else:
        return None
    return logits if logits.shape[0] == vocab else logits[:vocab]


def drawn_at(state, position: int) -> Draw | None:
    """The generated token that follows `position` in the run shown, if Generate drew it,
    with the settings it was drawn with."""
    trace, generated = state.trace, state.generated
    if trace is None:
        return None
    index = position + 1 - (trace.n_tokens - len(generated))  # among the generated tokens
    if not 0 <= index < len(generated) or position + 1 >= trace.n_tokens:
        return None
    if int(trace.token_ids[position + 1]) != generated[index]:
        return None  # the run shown is not of these generated tokens (yet)
    return state.draws[index]
