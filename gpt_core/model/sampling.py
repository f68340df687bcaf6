"""The distribution the next token is drawn from: one position's logits ÷ temperature, then
the top-k cut, then the top-p (nucleus) cut, then softmax, in the order and with the tie
rules of transformers' `generate` (TemperatureLogitsWarper, TopKLogitsWarper,
TopPLogitsWarper). Temperature 0 is greedy: all the probability on the argmax."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class SamplingDistribution:
    temperature: float  # 0: greedy
    top_k: int | None  # None: no top-k cut
    top_p: float | None  # None (or 1): no top-p cut
    before: np.ndarray  # [vocab] float32, softmax of the plain logits (temperature 1, no cuts)
    probs: np.ndarray  # [vocab] float32, what the sampler draws from (zero where cut)
    kth_logit: float | None  # the k-th largest logit: top-k keeps every logit >= it
    top_k_kept: int  # tokens the top-k cut keeps (ties at the k-th logit all stay)
    nucleus_size: int | None  # tokens the top-p cut keeps, of those top-k kept (None: no cut)
    entropy_before: float  # of `before`, in nats
    entropy_after: float  # of `probs`, in nats (0 when greedy)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def possible(self) -> int:
        """How many tokens the sampler can still draw (probability above 0)."""
        return int(np.count_nonzero(self.probs))


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """ValueError naming the first setting out of range."""
    if not 0 <= temperature < math.inf:  # (NaN too)
        raise ValueError(f"temperature must be a number >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def next_token_distribution(
    logits: Tensor | np.ndarray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> SamplingDistribution:
    """The sampling distribution of one position's logits [vocab], computed on the CPU in
    float32 with the very operations transformers' warpers use, so ties at a cut-off fall
    the same way."""
    check_sampling(temperature, top_k, top_p)
    if isinstance(logits, np.ndarray):  # (a trace's arrays are read-only: copied)
        logits = torch.from_numpy(np.array(logits, dtype=np.float32))
    logits = logits.detach().float().cpu().reshape(1, -1)  # [1, vocab]
    before = torch.softmax(logits, dim=-1)[0]  # [vocab]
    if temperature == 0:
        probs = torch.zeros_like(before)
        probs[torch.argmax(logits[0])] = 1.0
        return _distribution(temperature, top_k, top_p, before, probs, None, 1, None)
    scores = logits / temperature  # [1, vocab]
    kth, kept = None, logits.shape[-1]
    if top_k is not None:
        k = min(top_k, scores.shape[-1])
        top_scores, top_ids = torch.topk(scores, k)  # [1, k] each
        scores = scores.masked_fill(scores < top_scores[..., -1, None], -torch.inf)
        kth = float(logits[0, top_ids[0, -1]])  # the k-th logit: temperature keeps the order
        kept = int(torch.isfinite(scores).sum())
    nucleus = None
    if top_p is not None:
        scores = _top_p_cut(scores, top_p)
        nucleus = int(torch.isfinite(scores).sum())
    probs = torch.softmax(scores, dim=-1)[0]
    return _distribution(temperature, top_k, top_p, before, probs, kth, kept, nucleus)


def _top_p_cut(scores: Tensor, top_p: float) -> Tensor:
    """TopPLogitsWarper: sort ascending and remove the tokens whose cumulative probability is
    at most 1 - p; the most likely token always stays."""
    sorted_scores, order = torch.sort(scores, descending=False)  # [1, vocab]
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = False
    return scores.masked_fill(remove.scatter(1, order, remove), -torch.inf)


def _distribution(temperature, top_k, top_p, before, probs, kth, kept, nucleus):
    return SamplingDistribution(
        temperature,
        top_k,
        top_p,
        before.numpy(),
        probs.numpy(),
        kth,
        kept,
        nucleus,
        entropy(before),
        entropy(probs),
    )


def entropy(probs: Tensor) -> float:
    """-Σ p log p in nats, with 0 log 0 = 0."""
    return float(-torch.special.xlogy(probs, probs).sum()) + 0.0  # (never -0.0)


def draw(distribution: SamplingDistribution, generator: torch.Generator | None = None) -> int:
    """One token id drawn from the distribution (the argmax when greedy)."""
    probs = torch.from_numpy(distribution.probs)
    if distribution.greedy:
        return int(torch.argmax(probs))
    return int(torch.multinomial(probs, 1, generator=generator))
