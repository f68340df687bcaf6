"""A lens at every sub-layer: the residual stream read through the final LayerNorm and the
output head at its 2L + 1 points (the embeddings' sum, then each block's stream after
attention and its output), at every position. Per point and position: the top-1 token and
its probability, the five most likely tokens, the entropy of the distribution,
KL(final ‖ lens) and, for a target token, its rank. The last point is the model's own
output, so its KL is 0. Where a point's logits are not finite (broken weights) nothing can
be ranked: its ids and ranks are NOT_FINITE (-1) and its numbers NaN. A subset of
positions can be read alone (the window reads the visible columns first and streams the
rest)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..model import GPTModel, check_in_vocabulary
from ..probe import Trace
from ..probe.stages import residual_stream

LENS_TOP_COUNT = 5  # tokens kept per cell, for hovering
NOT_FINITE = -1  # the id and rank given where the logits hold NaN or Inf


@dataclass(frozen=True)
class SublayerLens:
    labels: tuple[str, ...]  # "embeddings", "B0 mid", "B0 out", …: one per point
    positions: np.ndarray  # [T'] int64: the positions read, the columns of every array
    top1_ids: np.ndarray  # [2L + 1, T'] int64, NOT_FINITE where the logits are not finite
    top1_probs: np.ndarray  # [2L + 1, T'] float32
    topk_ids: np.ndarray  # [2L + 1, T', LENS_TOP_COUNT] int64, most likely first
    topk_probs: np.ndarray  # [2L + 1, T', LENS_TOP_COUNT] float32
    entropy: np.ndarray  # [2L + 1, T] float32, nats
    kl: np.ndarray  # [2L + 1, T'] float32, KL(final ‖ lens) in nats
    target_rank: np.ndarray | None  # [2L + 1, T'] int64, 0 = top (NOT_FINITE); None: no target


@torch.inference_mode()
def sublayer_lens(
    model: GPTModel,
    trace: Trace,
    target: int | None = None,
    positions: Sequence[int] | None = None,
) -> SublayerLens:
    """Every point of the residual stream of `trace` through final_norm and out_head, at
    `positions` (default: all). One point's [T', vocab] logits at a time, so memory stays
    at one such matrix."""
    check_in_vocabulary((target,), model.cfg)
    device = next(model.parameters()).device
    columns_read = np.arange(trace.n_tokens) if positions is None else np.asarray(positions)
    if columns_read.size and not 0 <= columns_read.min() <= columns_read.max() < trace.n_tokens:
        raise ValueError(f"positions must lie in 0 … {trace.n_tokens - 1}")
    points = residual_stream(trace.config.n_layers)
    final_log_p = _log_probs(model, trace[points[-1][0]][columns_read], device)  # [T', V]
    rows = [
        _read(model, trace[key][columns_read], final_log_p, target, device) for key, _ in points
    ]
    columns = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
    return SublayerLens(
        labels=tuple(label for _, label in points),
        positions=columns_read.astype(np.int64),
        top1_ids=columns["topk_ids"][..., 0],
        top1_probs=columns["topk_probs"][..., 0],
        topk_ids=columns["topk_ids"],
        topk_probs=columns["topk_probs"],
        entropy=columns["entropy"],
        kl=columns["kl"],
        target_rank=columns.get("target_rank"),
    )


def _log_probs(model: GPTModel, stream: np.ndarray, device) -> torch.Tensor:
    """[T', V] log-probabilities; a position whose logits are not finite is all NaN."""
    resid = torch.tensor(stream, device=device)[None]  # [1, T, E]
    logits = model.out_head(model.final_norm(resid))[0].float()  # [T', V]
    log_p = torch.log_softmax(logits, dim=-1)
    return log_p.masked_fill(~torch.isfinite(logits).all(-1, keepdim=True), float("nan"))


def _read(model, stream, final_log_p, target, device) -> dict[str, np.ndarray]:
    log_p = _log_probs(model, stream, device)  # [T', V]
    broken = log_p[:, :1].isnan()  # [T', 1]: NaN compares false, so it would rank as top
    best = log_p.topk(min(LENS_TOP_COUNT, log_p.shape[-1]), dim=-1)  # [T', K]
    p = log_p.exp()
    entropy = -(p * log_p).nan_to_num().sum(-1)  # 0 · log 0 is 0
    row = {
        "topk_ids": best.indices.masked_fill(broken, NOT_FINITE).cpu().numpy(),
        "topk_probs": best.values.exp().cpu().numpy(),
        "entropy": entropy.masked_fill(broken[:, 0], float("nan")).cpu().numpy(),
        "kl": (final_log_p.exp() * (final_log_p - log_p)).sum(-1).clamp(min=0).cpu().numpy(),
    }
    if target is not None:
        target_log_p = log_p[:, target : target + 1]  # [T', 1]
        rank = (log_p > target_log_p).sum(-1, keepdim=True)  # [T', 1]
        row["target_rank"] = rank.masked_fill(broken, NOT_FINITE)[:, 0].cpu().numpy()
    return row
