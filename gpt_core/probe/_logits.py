"""Next-token summaries of a [T, vocab] logits matrix, in few passes over it.

The full distribution at every position is large (T x 50,257), so a trace keeps the top-k
at every position, all logits at the last one and the per-token loss. Done naively
(log_softmax, then topk) that costs several percent of a forward pass on a CPU; here the
top-k reads each row once through block maxima, and the log-normaliser is summed in
small cache-sized chunks that reuse one buffer.
"""

from __future__ import annotations

import torch
from torch import Tensor

_BLOCK = 64  # vocabulary entries per block in the block-max pass
_CHUNK_ROWS = 16  # rows per chunk in the log-normaliser pass


def topk_rows(logits: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """torch.topk(logits, k, dim=-1) of a [T, V] matrix: values and indices, [T, k].

    The k largest entries of a row lie in the k blocks of _BLOCK entries with the largest
    maxima (a block holding one of them has a maximum at least as large as the k-th
    value), so one max pass over the row and a top-k over k * _BLOCK candidates suffice.
    """
    rows, vocab = logits.shape
    n_blocks = vocab // _BLOCK
    if n_blocks < 4 * k or not logits.is_contiguous():
        return torch.topk(logits, k, dim=-1)
    main = n_blocks * _BLOCK
    blocks = logits[:, :main].view(rows, n_blocks, _BLOCK)  # [T, n_blocks, B]
    best_blocks = torch.topk(blocks.amax(dim=-1), k, dim=-1).indices  # [T, k]
    offsets = torch.arange(_BLOCK, device=logits.device)
    candidates = blocks.gather(1, best_blocks[:, :, None].expand(rows, k, _BLOCK))  # [T, k, B]
    candidate_ids = best_blocks[:, :, None] * _BLOCK + offsets  # [T, k, B]
    tail_ids = torch.arange(main, vocab, device=logits.device).expand(rows, vocab - main)
    candidates = torch.cat([candidates.reshape(rows, -1), logits[:, main:]], dim=1)
    candidate_ids = torch.cat([candidate_ids.reshape(rows, -1), tail_ids], dim=1)
    top = torch.topk(candidates, k, dim=-1)  # [T, k]
    return top.values, candidate_ids.gather(1, top.indices)


def logsumexp_rows(logits: Tensor, row_max: Tensor) -> Tensor:
    """log(sum(exp(logits), dim=-1)) of a [T, V] matrix, given each row's maximum [T]."""
    rows, vocab = logits.shape
    buffer = logits.new_empty(min(rows, _CHUNK_ROWS), vocab)
    sums = logits.new_empty(rows)
    for start in range(0, rows, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, rows)
        chunk = buffer[: stop - start]
        torch.sub(logits[start:stop], row_max[start:stop, None], out=chunk)
        chunk.exp_()
        torch.sum(chunk, dim=-1, out=sums[start:stop])
    return sums.log_().add_(row_max)


def summarize_logits(
    logits: Tensor, ids: Tensor, top_k: int, tracked: Tensor | None = None
) -> dict[str, Tensor]:
    """Trace arrays from logits [T, vocab] and the prompt's ids [T]."""
    top_values, top_ids = topk_rows(logits, top_k)  # [T, k]
    log_z = logsumexp_rows(logits, top_values[:, 0])  # [T]
    out = {
        "logits/topk_ids": top_ids,
        "logits/topk_probs": torch.exp(top_values - log_z[:, None]),  # [T, k]
        "logits/last": logits[-1],  # [vocab]
        # position t predicts token t + 1: -log p(ids[t + 1])
        "loss/per_token": log_z[:-1] - logits[:-1].gather(1, ids[1:, None])[:, 0],  # [T - 1]
    }
    if tracked is not None:
        out["logits/tracked_ids"] = tracked
        out["logits/tracked_probs"] = torch.exp(logits.gather(1, tracked[:, None])[:, 0] - log_z)
    return out
