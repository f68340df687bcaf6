"""Exact activation patching, fast: each patched run starts at the patched block from the
cached residual stream, many patched runs share one batched forward, and the output head
runs only at the metric position (the runs are cut there, which causality allows).

A sweep is a list of cells per block; `build(cells)` makes the residual stream of those
cells' runs at the block, `finish` runs them to the metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ...model import GPTModel
from ._runs import RunCache, batch_size, finish, head_output
from .result import Metric, Receiver
from .sweeps import Sweep

Step = Callable[[int], None]  # called with the number of cells just done


def exact_layer(
    model: GPTModel,
    sweep: Sweep,
    layer: int,
    base: RunCache,
    source: RunCache,
    metric: Metric,
    step: Step,
) -> Tensor:
    """One block's row of `sweep`: the metric of every patched run, [T], [H] or [H, T]."""
    n_tokens = base.block_input(0).shape[0]
    cells = sweep.shape(1, model.cfg.n_heads, n_tokens)[1:]
    stream = base.stream(sweep.start, layer)  # [T, E]
    change = sweep.change(model, sweep, layer, base, source)  # [T, E] or [H, T, E]

    def build(indices: Tensor) -> Tensor:
        return _patched(stream, change, sweep.layout, indices)

    values = _run(model, metric, layer, sweep.start, math.prod(cells), build, step)
    return values.view(cells)


def _patched(stream: Tensor, change: Tensor, layout: tuple[str, ...], cells: Tensor) -> Tensor:
    """The stream of each cell's run: [n, T, E]. A cell indexes the layout's axes after the
    layer, flattened: a head gets its own change, a position has it added there alone."""
    if "position" not in layout:  # one head's change at every position
        return stream + change[cells]
    n_tokens = stream.shape[0]
    per_head = change if "head" in layout else change[None]  # [H or 1, T, E]
    heads, positions = cells // n_tokens, cells % n_tokens
    x = stream.repeat(len(cells), 1, 1)  # [n, T, E]
    x[torch.arange(len(cells)), positions] += per_head[heads, positions]
    return x


def path_layer(
    model: GPTModel,
    layer: int,
    receiver: Receiver,
    base: RunCache,
    source: RunCache,
    metric: Metric,
    step: Step,
    alpha: Tensor | None = None,
) -> Tensor:
    """Path patching for the senders in block `layer`: each head's change (source minus
    base) reaches the receiver directly, everything else stays at the base run. [H]
    With alpha [H], each change is scaled by it (differentiably: attribution patching)."""
    n_heads = model.cfg.n_heads
    context = source.at("attn/context", layer) - base.at("attn/context", layer)
    deltas = head_output(model, layer, context)  # [H, T, E]
    if alpha is not None:
        deltas = deltas * alpha[:, None, None]
    if receiver.layer is None:  # the logits: the final stream plus the sender's change
        final = base.final

        def build(heads: Tensor) -> Tensor:
            return final + deltas[heads]

        return _run(model, metric, model.cfg.n_layers - 1, "post", n_heads, build, step)
    block = model.trf_blocks[receiver.layer]
    stream = base.block_input(receiver.layer)  # [T, E]
    unpatched = block.att.project(block.norm1(stream[None]))  # 3 x [1, H, T, d_head]
    which = ("q", "k", "v").index(receiver.kind)

    def build(heads: Tensor) -> Tensor:
        patched = block.att.project(block.norm1(stream + deltas[heads]))[which]  # [n, H, T, d]
        qkv = [t.expand(len(heads), -1, -1, -1).clone() for t in unpatched]
        qkv[which][:, receiver.head] = patched[:, receiver.head]
        return stream + block.att.attend(*qkv)  # [n, T, E]: the stream after attention

    return _run(model, metric, receiver.layer, "mid", n_heads, build, step)


def _run(model, metric, layer, start, n_cells, build, step: Step) -> Tensor:
    """Every cell's metric, in chunks that keep the memory bounded."""
    chunk = batch_size(model, metric.position + 1)  # the runs are cut after the metric
    values = []
    for low in range(0, n_cells, chunk):
        cells = torch.arange(low, min(low + chunk, n_cells))
        values.append(finish(model, build(cells), layer, start, metric))
        step(len(cells))
    return torch.cat(values)


def path_estimate(
    model: GPTModel, layer: int, receiver: Receiver, base: RunCache, source: RunCache, metric
) -> Tensor:
    """The first-order estimate of path patching for the senders in block `layer`: the
    derivative of the metric along each sender's direct path, at the base run. [H]"""
    device = base.final.device
    alpha = torch.zeros(model.cfg.n_heads, device=device, requires_grad=True)  # 0: the base run
    with torch.enable_grad():
        values = path_layer(model, layer, receiver, base, source, metric, lambda n: None, alpha)
        (slope,) = torch.autograd.grad(values.sum(), alpha)
    return slope
