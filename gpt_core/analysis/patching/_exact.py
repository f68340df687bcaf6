"""Exact activation patching, fast: each patched run starts at the patched block from the
cached residual stream and at the first position its patch changes (the base run's keys
and values stand for the positions before), many patched runs share one batched forward,
and the output head runs only at the metric position (the runs are cut there, which
causality allows).

A sweep is a list of cells per block; `build(cells)` makes the residual stream of those
cells' runs at the block, `finish_suffixes` runs their changed positions to the metric.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from ...model import GPTModel
from ..prefix_reuse import PrefixCache, Suffixes, batches, finish_suffixes, first_changes
from ._runs import RunCache, head_output
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
    prefix: PrefixCache,
) -> Tensor:
    """One block's row of `sweep`: the metric of every patched run, [T], [H] or [H, T]."""
    n_tokens = base.block_input(0).shape[0]
    cells = sweep.shape(1, model.cfg.n_heads, n_tokens)[1:]
    stream = base.stream(sweep.start, layer)  # [T, E]
    change = sweep.change(model, sweep, layer, base, source)  # [T, E] or [H, T, E]

    build = partial(_patched_rows, stream, change, sweep.layout)
    where = (layer, sweep.start)
    if sweep.start == "mid" and "position" in sweep.layout:
        build, where = _feed_forward_where_changed(model, layer, base, build), (layer, "post")
    starts, changed = _starts(change, sweep.layout, n_tokens)
    values = _run(model, prefix, metric, where, (starts, changed), build, step, base.value)
    return values.view(cells)


def _feed_forward_where_changed(model: GPTModel, layer: int, base: RunCache, build):
    """`build` for runs changed at one position between block `layer`'s attention and its
    feed-forward, carried to the block's output: the feed-forward works on each position
    alone, so it runs on the changed one only; elsewhere the output is the base run's."""
    block, output = model.trf_blocks[layer], base.stream("post", layer)  # output: [T, E]

    def after_block(cells: Tensor, rows: Suffixes) -> Tensor:
        x = output[rows.position]  # [M, E]
        changed = build(cells, rows)[rows.first]  # [n, E]
        x[rows.first] = changed + block.ff(block.norm2(changed))
        return x

    return after_block


def _starts(change: Tensor, layout: tuple[str, ...], n_tokens: int) -> tuple[Tensor, Tensor]:
    """Where each cell's run first differs from the base run, and whether it differs at all:
    a position's cell at that position, a head at every position at its first change.
    Each flattened: [T], [H] or [H × T]."""
    if "position" not in layout:
        return first_changes(change)  # [H] each
    changed = (change != 0).any(-1)  # [T] or [H, T]
    positions = torch.arange(n_tokens, device=change.device).expand_as(changed)
    return positions.flatten(), changed.flatten()


def _patched_rows(
    stream: Tensor, change: Tensor, layout: tuple[str, ...], cells: Tensor, rows: Suffixes
) -> Tensor:
    """The stream of each cell's run on its rows: [M, E]. A cell indexes the layout's axes
    after the layer, flattened: a head gets its own change at every position; a position
    gets its change there alone, on its run's first row (the run starts there)."""
    x = stream[rows.position]  # [M, E]
    if "position" not in layout:  # one head's change at every position
        return x + change[cells[rows.run], rows.position]
    n_tokens = stream.shape[0]
    per_head = change if "head" in layout else change[None]  # [H or 1, T, E]
    x[rows.first] += per_head[cells // n_tokens, cells % n_tokens]
    return x


def path_layer(
    model: GPTModel,
    layer: int,
    receiver: Receiver,
    base: RunCache,
    source: RunCache,
    metric: Metric,
    step: Step,
    prefix: PrefixCache,
    alpha: Tensor | None = None,
) -> Tensor:
    """Path patching for the senders in block `layer`: each head's change (source minus
    base) reaches the receiver directly, everything else stays at the base run. [H]
    With alpha [H], each change is scaled by it (differentiably: attribution patching)."""
    context = source.at("attn/context", layer) - base.at("attn/context", layer)
    deltas = head_output(model, layer, context)  # [H, T, E]
    if alpha is not None:
        deltas = deltas * alpha[:, None, None]
    starts = first_changes(context.transpose(0, 1))  # [H] each: nothing changes before
    if receiver.layer is None:  # the logits: the final stream plus the sender's change
        final = base.final

        def build(heads: Tensor, rows: Suffixes) -> Tensor:
            return final[rows.position] + deltas[heads[rows.run], rows.position]  # [M, E]

        at_logits = (model.cfg.n_layers - 1, "post")
        return _run(model, prefix, metric, at_logits, starts, build, step, base.value)
    block = model.trf_blocks[receiver.layer]
    stream = base.block_input(receiver.layer)  # [T, E]
    unpatched = block.att.project(block.norm1(stream[None]))  # 3 x [1, H, T, d_head]
    which = ("q", "k", "v").index(receiver.kind)

    def build(heads: Tensor, rows: Suffixes) -> Tensor:
        patched = block.att.project(block.norm1(stream + deltas[heads]))[which]  # [n, H, T, d]
        qkv = [t.expand(len(heads), -1, -1, -1).clone() for t in unpatched]
        qkv[which][:, receiver.head] = patched[:, receiver.head]
        after = stream + block.att.attend(*qkv)  # [n, T, E]: the stream after attention
        return after[rows.run, rows.position]  # [M, E]

    where = (receiver.layer, "mid")
    return _run(model, prefix, metric, where, starts, build, step, base.value)


def _run(model, prefix: PrefixCache, metric, where, starts, build, step: Step, unchanged):
    """Every cell's metric, [n]: the runs from where = (block, "pre" | "mid" | "post") on,
    each from its start, in batches that keep the memory bounded. starts: (each cell's
    start, whether it changes anything) [n] each; a cell that changes nothing is the base
    run, whose metric is `unchanged`, and is not run."""
    starts, changed = starts
    values = torch.full((len(starts),), unchanged, device=starts.device)
    step(int((~changed).sum()))
    run = changed.nonzero()[:, 0]  # [n']
    n_tokens = metric.position + 1  # the runs are cut after the metric
    for batch in batches(starts[run], model, n_tokens):
        cells = run[batch]
        rows = Suffixes.of(starts[cells], n_tokens)
        patched = finish_suffixes(model, prefix, rows, build(cells, rows), *where, metric)
        values = values.index_put((cells,), patched)  # out of place: alpha's graph stays
        step(len(cells))
    return values


def path_estimate(
    model: GPTModel,
    layer: int,
    receiver: Receiver,
    base: RunCache,
    source: RunCache,
    metric,
    prefix: PrefixCache,
) -> Tensor:
    """The first-order estimate of path patching for the senders in block `layer`: the
    derivative of the metric along each sender's direct path, at the base run. [H]"""
    device = base.final.device
    alpha = torch.zeros(model.cfg.n_heads, device=device, requires_grad=True)  # 0: the base run
    with torch.enable_grad():
        values = path_layer(
            model, layer, receiver, base, source, metric, lambda n: None, prefix, alpha
        )
        if not values.requires_grad:  # no sender changes anything: no run, slope 0
            return torch.zeros_like(alpha)
        (slope,) = torch.autograd.grad(values.sum(), alpha)
    return slope
