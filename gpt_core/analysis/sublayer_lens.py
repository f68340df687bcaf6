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
from ..probe import Trace, topk_rows
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


# The logits of one block of (point, position) cells, with the exponentials beside them,
# stay near this many bytes: about 650 cells of gpt2-small's 50,257 tokens.
LOGITS_BUDGET_BYTES = 2**28


@torch.inference_mode()
def sublayer_lens(
    model: GPTModel,
    trace: Trace,
    target: int | None = None,
    positions: Sequence[int] | None = None,
) -> SublayerLens:
    """Every point of the residual stream of `trace` through final_norm and out_head, at
    `positions` (default: all). The cells' logits are made in large blocks of rows, each
    block read in one pass for its top tokens, one for the normaliser and one for the
    entropy (and one for the target's rank); KL needs no pass of its own: the final point's
    probabilities are folded into the output head once per position (below)."""
    check_in_vocabulary((target,), model.cfg)
    device = next(model.parameters()).device
    columns_read = np.arange(trace.n_tokens) if positions is None else np.asarray(positions)
    if columns_read.size and not 0 <= columns_read.min() <= columns_read.max() < trace.n_tokens:
        raise ValueError(f"positions must lie in 0 … {trace.n_tokens - 1}")
    points = residual_stream(trace.config.n_layers)
    streams = np.stack([trace[key][columns_read] for key, _ in points])  # [P, T', E]
    n_points, n_columns = streams.shape[:2]
    normed = model.final_norm(torch.tensor(streams, device=device))  # [P, T', E]
    vocab = model.out_head.out_features
    per_block = max(1, LOGITS_BUDGET_BYTES // (8 * vocab))
    # two [block, V] buffers serve every block: a fresh 100 MB tensor per step would cost
    # more in page faults than the step's own arithmetic
    buffers = torch.empty(2, min(per_block, n_points * n_columns), vocab, device=device)
    blocks = normed[:-1].flatten(0, 1).split(per_block)
    reads = [_read_rows(model, rows, target, buffers) for rows in blocks]
    reads += [
        _read_rows(model, rows, target, buffers, fold=True) for rows in normed[-1].split(per_block)
    ]
    folded = torch.cat([read.pop("folded") for read in reads[len(blocks) :]])  # [T', E]
    columns = {name: torch.cat([read[name] for read in reads]) for name in reads[0]}
    columns = {name: value.unflatten(0, (n_points, n_columns)) for name, value in columns.items()}
    # KL(final ‖ lens) = Σ p_f (log p_f − log p) = log Z − H_f − Σ_v p_f,v logit_v, and
    # Σ_v p_f,v logit_v = (Σ_v p_f,v W_v) · h (the output head has no bias): one dot
    # product per cell.
    expected_logit = (normed.double() * folded.double()).sum(-1)  # [P, T']
    kl = columns.pop("log_z") - columns["entropy"][-1] - expected_logit
    kl[-1] = 0  # the model's own output, read against itself
    columns["kl"] = kl.clamp(min=0)
    arrays = {name: value.cpu().numpy() for name, value in columns.items()}
    return SublayerLens(
        labels=tuple(label for _, label in points),
        positions=columns_read.astype(np.int64),
        top1_ids=arrays["topk_ids"][..., 0],
        top1_probs=arrays["topk_probs"][..., 0].astype(np.float32),
        topk_ids=arrays["topk_ids"],
        topk_probs=arrays["topk_probs"].astype(np.float32),
        entropy=arrays["entropy"].astype(np.float32),
        kl=arrays["kl"].astype(np.float32),
        target_rank=arrays.get("target_rank"),
    )


def _read_rows(model: GPTModel, rows: torch.Tensor, target, buffers, fold: bool = False) -> dict:
    """The readings of normed streams `rows` [R, E]: the top tokens, log Z, the entropy and
    the target's rank (float64 from the float32 sums on); with fold, also Σ_v p_v W_v [R, E].
    `buffers` [2, ≥ R, V] hold the logits and their exponentials. A row with a NaN or Inf
    logit reads NOT_FINITE and NaN."""
    head, n_rows = model.out_head, len(rows)
    logits = torch.matmul(rows.float(), head.weight.float().t(), out=buffers[0, :n_rows])  # [R, V]
    best = topk_rows(logits, min(LENS_TOP_COUNT, logits.shape[-1]))  # [R, K] each
    shifted = logits.sub_(best[0][:, :1])  # logits − their max, in place: [R, V]
    exp = torch.exp(shifted, out=buffers[1, :n_rows])  # [R, V]
    total = exp.sum(-1).double()  # [R]
    weighted = torch.linalg.vecdot(exp, shifted).double()  # [R]: Σ e (l − max)
    broken = ~torch.isfinite(weighted)  # [R]: any NaN or ±Inf logit spoils this sum
    log_z = best[0][:, 0].double() + total.log()  # [R]
    nan = float("nan")
    read = {
        "topk_ids": best[1].masked_fill(broken[:, None], NOT_FINITE),
        "topk_probs": (best[0] - log_z[:, None]).exp().masked_fill(broken[:, None], nan),
        "entropy": (total.log() - weighted / total).masked_fill(broken, nan),
        "log_z": log_z.masked_fill(broken, nan),
    }
    if target is not None:  # the logits above the target's, counted as 1.0s in place
        above = shifted.gt_(shifted[:, target : target + 1].clone())  # [R, V]
        read["target_rank"] = above.sum(-1).long().masked_fill(broken, NOT_FINITE)
    if fold:
        probs = exp.div_(total[:, None].float())  # [R, V], in place
        read["folded"] = probs @ head.weight.float()  # [R, E]
    return read
