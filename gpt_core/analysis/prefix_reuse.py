"""Runs that skip what causality leaves unchanged. A run whose stream differs from a base
run's from position p on (a patched activation, an occluded token) computes, before p,
exactly what the base run computed; so it runs positions p … T − 1 only, attending over
the base run's keys and values for the earlier positions, from the changed block on, and
the last block at the read position only. Activation patching and occlusion use it.

Runs with different starts share one batch as packed rows (run c holds its positions
starts[c] … T − 1): LayerNorm, the projections and the feed-forward layer work on the rows
alone, with nothing padded; attention lines each run's queries up at the right end of the
batch's longest suffix, so one causal mask serves every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from ..model import GPTModel

# The working memory of one batch of runs stays near this many bytes.
BATCH_BUDGET_BYTES = 2**29


class PrefixCache:
    """The base run's keys and values in each block, computed from its block inputs on
    first use and kept for every later batch: 2 × L × T × E floats."""

    def __init__(self, model: GPTModel, block_input: Callable[[int], Tensor]):
        """block_input(layer): the base run's residual stream entering block `layer`, [T, E]."""
        self.model, self.block_input = model, block_input
        self._blocks: dict[int, tuple[Tensor, Tensor]] = {}

    def __getitem__(self, layer: int) -> tuple[Tensor, Tensor]:
        """Keys and values of block `layer`, each [T, H, d_head]."""
        if layer not in self._blocks:
            block = self.model.trf_blocks[layer]
            _, keys, values = block.att.project(block.norm1(self.block_input(layer)[None]))
            self._blocks[layer] = (keys[0].transpose(0, 1), values[0].transpose(0, 1))
        return self._blocks[layer]


@dataclass(frozen=True)
class Suffixes:
    """n runs packed as rows: run c holds positions starts[c] … T − 1, in order."""

    run: Tensor  # [M] the run of each row
    position: Tensor  # [M] its position
    first: Tensor  # [n] the row of each run's first position (its start)
    last: Tensor  # [n] the row of each run's last position
    n_tokens: int  # T
    span: int  # the longest suffix: T − min(starts)

    @classmethod
    def of(cls, starts: Tensor, n_tokens: int) -> Suffixes:
        lengths = n_tokens - starts  # [n]
        ends = torch.cumsum(lengths, 0)  # [n]
        run = torch.repeat_interleave(torch.arange(len(starts), device=starts.device), lengths)
        position = torch.arange(int(ends[-1]), device=starts.device) - (ends - n_tokens)[run]
        return cls(run, position, ends - lengths, ends - 1, n_tokens, int(lengths.max()))

    @property
    def slot(self) -> Tensor:
        """Each row's place among the batch's padded queries: [M]."""
        return self.position - (self.n_tokens - self.span)


def finish_suffixes(
    model: GPTModel, prefix: PrefixCache, rows: Suffixes, x: Tensor, layer: int, start: str,
    metric: Callable[[Tensor], Tensor], skip: frozenset[int] = frozenset(),
) -> Tensor:  # fmt: skip
    """metric(logits at the last position [n, vocab]) of runs whose residual stream at
    block `layer` is `x` [M, E] on the rows: start "pre" is the block's input, "mid" its
    stream between attention and feed-forward, "post" its output. Blocks in `skip` pass
    their input through. Returns [n]."""
    blocks, last = model.trf_blocks, model.cfg.n_layers - 1
    at_metric = start == "post" and layer == last  # patched on the last block's output
    if start == "mid":
        block = blocks[layer]
        if layer == last:
            x = x[rows.last]  # [n, E]: all the metric reads
        x = x + block.ff(block.norm2(x))
    if start != "pre":
        layer += 1
    for index in range(layer, last + 1):
        if index in skip:
            x = x[rows.last] if index == last else x
        else:
            x = _block_rows(blocks[index], prefix[index], rows, x, only_last=index == last)
    if at_metric:
        x = x[rows.last]  # [n, E]
    return metric(model.out_head(model.final_norm(x)))  # [n]


def _block_rows(block, prefix: tuple[Tensor, Tensor], rows: Suffixes, x: Tensor, only_last):
    """One block on the rows [M, E]; with only_last, its output at each run's last
    position alone: [n, E]."""
    att, n_runs = block.att, len(rows.last)
    queries, keys, values = (
        t[0].transpose(0, 1) for t in att.project(block.norm1(x[None]))
    )  # [M, H, d_head] each
    # every run attends over the base run's keys and values, its own from its start on
    all_keys = prefix[0].expand(n_runs, -1, -1, -1).clone()  # [n, T, H, d_head]
    all_values = prefix[1].expand(n_runs, -1, -1, -1).clone()
    all_keys[rows.run, rows.position] = keys
    all_values[rows.run, rows.position] = values
    if only_last:
        x = x[rows.last]  # [n, E]
        padded = queries[rows.last][:, :, None]  # [n, H, 1, d_head]
    else:
        padded = queries.new_zeros(n_runs, rows.span, *queries.shape[1:])  # [n, S, H, d]
        padded[rows.run, rows.slot] = queries
        padded = padded.transpose(1, 2)  # [n, H, S, d_head]
    out = att.attend(padded, all_keys.transpose(1, 2), all_values.transpose(1, 2))  # [n, S, E]
    x = x + (out[:, 0] if only_last else out[rows.run, rows.slot])
    return x + block.ff(block.norm2(x))


def batches(starts: Tensor, model: GPTModel, n_tokens: int) -> Iterator[Tensor]:
    """The cells, in batches that keep the working memory near BATCH_BUDGET_BYTES: cells
    with near starts together (their padded queries then waste little). Yields indices."""
    cfg = model.cfg
    order = torch.argsort(starts, stable=True)
    sorted_starts = starts[order].tolist()
    low, rows = 0, 0
    for index, begin in enumerate(sorted_starts):
        rows += n_tokens - begin
        span = n_tokens - sorted_starts[low]
        runs = index - low + 1
        # the rows' activations (the feed-forward's 4E wide), then per run: keys, values,
        # padded queries, a full stream (path patching's receiver builds one) and the scores
        per_run = n_tokens * (4 * cfg.emb_dim + 3 * cfg.n_heads * span)
        size = 4 * (20 * cfg.emb_dim * rows + runs * per_run)
        if size > BATCH_BUDGET_BYTES and runs > 1:
            yield order[low:index]
            low, rows = index, n_tokens - begin
    if low < len(sorted_starts):
        yield order[low:]


def first_changes(change: Tensor) -> tuple[Tensor, Tensor]:
    """Per row of `change` [..., T, E]: the first position where it is not zero, and
    whether it is anywhere (a row that is zero throughout leaves the base run as it was;
    its position then reads T − 1). Both [...]."""
    n_tokens = change.shape[-2]
    changed = (change != 0).any(-1)  # [..., T]
    positions = torch.arange(n_tokens, device=change.device)
    first = torch.where(changed, positions, n_tokens - 1).min(-1).values
    return first, changed.any(-1)
