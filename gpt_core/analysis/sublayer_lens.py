"""A lens at every sub-layer: the residual stream read through the final LayerNorm and the
output head at its 2L + 1 points (the embeddings' sum, then each block's stream after
attention and its output), at every position. Per point and position: the top-1 token and
its probability, the entropy of the distribution, KL(final ‖ lens) and, for a target token,
its rank. The last point is the model's own output, so its KL is 0."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model import GPTModel
from ..probe import Trace
from ..probe.stages import residual_stream


@dataclass(frozen=True)
class SublayerLens:
    labels: tuple[str, ...]  # "embeddings", "B0 mid", "B0 out", …: one per point
    top1_ids: np.ndarray  # [2L + 1, T] int64
    top1_probs: np.ndarray  # [2L + 1, T] float32
    entropy: np.ndarray  # [2L + 1, T] float32, nats
    kl: np.ndarray  # [2L + 1, T] float32, KL(final ‖ lens) in nats
    target_rank: np.ndarray | None  # [2L + 1, T] int64, 0 = top; None without a target


@torch.inference_mode()
def sublayer_lens(model: GPTModel, trace: Trace, target: int | None = None) -> SublayerLens:
    """Every point of the residual stream of `trace` through final_norm and out_head. One
    point's [T, vocab] logits at a time, so memory stays at one such matrix."""
    device = next(model.parameters()).device
    points = residual_stream(trace.config.n_layers)
    final_log_p = _log_probs(model, trace[points[-1][0]], device)  # [T, V]
    rows = [_read(model, trace[key], final_log_p, target, device) for key, _ in points]
    columns = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
    return SublayerLens(
        labels=tuple(label for _, label in points),
        top1_ids=columns["top1_ids"],
        top1_probs=columns["top1_probs"],
        entropy=columns["entropy"],
        kl=columns["kl"],
        target_rank=columns.get("target_rank"),
    )


def _log_probs(model: GPTModel, stream: np.ndarray, device) -> torch.Tensor:
    resid = torch.tensor(stream, device=device)[None]  # [1, T, E]
    return torch.log_softmax(model.out_head(model.final_norm(resid))[0].float(), dim=-1)


def _read(model, stream, final_log_p, target, device) -> dict[str, np.ndarray]:
    log_p = _log_probs(model, stream, device)  # [T, V]
    best = log_p.max(dim=-1)
    p = log_p.exp()
    row = {
        "top1_ids": best.indices.cpu().numpy(),
        "top1_probs": best.values.exp().cpu().numpy(),
        "entropy": (-(p * log_p).nan_to_num().sum(-1)).cpu().numpy(),
        "kl": (final_log_p.exp() * (final_log_p - log_p)).sum(-1).clamp(min=0).cpu().numpy(),
    }
    if target is not None:
        target_log_p = log_p[:, target : target + 1]  # [T, 1]
        row["target_rank"] = (log_p > target_log_p).sum(-1).cpu().numpy()
    return row
