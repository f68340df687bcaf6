"""compare(): what an intervention changed, relative to a baseline run of the same prompt."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..probe import Trace


@dataclass(frozen=True)
class Comparison:
    delta_loss: float | None  # other.loss - baseline.loss (None for a one-token prompt)
    top1_ids_before: np.ndarray  # [T] the baseline's most likely next token per position
    top1_ids_after: np.ndarray  # [T] the other run's
    delta_top1_prob: np.ndarray  # [T] change in each position's top-1 probability
    pred_prob_before: np.ndarray  # [T] probability of the baseline's top-1 token, before
    pred_prob_after: np.ndarray  # [T] ... and after; NaN where the other trace cannot say
    kl_last: float  # KL(baseline || other) of the last position's next-token distribution

    @property
    def delta_pred_prob(self) -> np.ndarray:
        """[T] change in the probability of the token the baseline predicted."""
        return self.pred_prob_after - self.pred_prob_before


def compare(baseline: Trace, other: Trace) -> Comparison:
    if not np.array_equal(baseline.token_ids, other.token_ids):
        raise ValueError("compare() needs two runs of the same prompt")
    before_ids = baseline["logits/topk_ids"][:, 0]
    before_p = baseline["logits/topk_probs"][:, 0].astype(np.float64)
    after_ids = other["logits/topk_ids"][:, 0]
    after_p = other["logits/topk_probs"][:, 0].astype(np.float64)
    delta_loss = None
    if baseline.loss is not None and other.loss is not None:
        delta_loss = other.loss - baseline.loss
    return Comparison(
        delta_loss=delta_loss,
        top1_ids_before=before_ids,
        top1_ids_after=after_ids,
        delta_top1_prob=after_p - before_p,
        pred_prob_before=before_p,
        pred_prob_after=_prob_of(other, before_ids),
        kl_last=kl_divergence(baseline["logits/last"], other["logits/last"]),
    )


def _prob_of(trace: Trace, ids: np.ndarray) -> np.ndarray:
    """Probability `trace` gave to ids[t] at each position t: exact where the trace tracked
    these ids or kept them in its top-k (always at the last position), else NaN."""
    if "logits/tracked_ids" in trace and np.array_equal(trace["logits/tracked_ids"], ids):
        return trace["logits/tracked_probs"].astype(np.float64)
    topk_ids, topk_probs = trace["logits/topk_ids"], trace["logits/topk_probs"]
    probs = np.full(ids.shape, np.nan)
    hit = topk_ids == ids[:, None]  # [T, k]
    rows = hit.any(axis=1)
    probs[rows] = topk_probs[hit]
    probs[-1] = np.exp(log_softmax(trace["logits/last"])[ids[-1]])
    return probs


def kl_divergence(logits_p: np.ndarray, logits_q: np.ndarray) -> float:
    """KL(p || q) in nats between two distributions given by their logits."""
    log_p = log_softmax(logits_p)
    log_q = log_softmax(logits_q)
    return float(np.sum(np.exp(log_p) * (log_p - log_q)))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p in float64 from one distribution's logits [V]."""
    z = logits.astype(np.float64)
    z = z - z.max()
    return z - np.log(np.exp(z).sum())
