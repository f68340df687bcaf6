"""Exact activation patching, fast: each patched run starts at the patched block from the
cached residual stream, many patched runs share one batched forward, and the output head
runs only at the metric position (the runs are cut there, which causality allows).

A sweep is a list of cells per block; `build(cells)` makes the residual stream of those
cells' runs at the block, `finish` runs them to the metric.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ...model import GPTModel
from ._runs import RunCache, batch_size, finish, head_output
from .result import Metric, Receiver

Step = Callable[[int], None]  # called with the number of cells just done


def sweep_shape(name: str, n_layers: int, n_heads: int, n_tokens: int) -> tuple[int, ...]:
    if name in ("resid", "attn", "mlp"):
        return (n_layers, n_tokens)
    if name == "heads_by_pos":
        return (n_layers, n_heads, n_tokens)
    return (n_layers, n_heads)  # heads, pattern, path


def exact_layer(
    model: GPTModel,
    name: str,
    layer: int,
    base: RunCache,
    source: RunCache,
    metric: Metric,
    step: Step,
) -> Tensor:
    """One block's row of sweep `name`: the metric of every patched run, [T], [H] or [H, T]."""
    n_tokens, n_heads = base.resid_pre[0].shape[0], model.cfg.n_heads
    if name in ("resid", "attn", "mlp"):
        x0, delta, start = _position_patch(name, layer, base, source)

        def build(cells: Tensor) -> Tensor:  # cells: positions
            x = x0.repeat(len(cells), 1, 1)  # [n, T, E]
            x[torch.arange(len(cells)), cells] += delta[cells]
            return x

        return _run(model, metric, layer, start, n_tokens, build, step)
    deltas = _head_deltas(model, name, layer, base, source)  # [H, T, E]
    x0 = base.resid_mid[layer]  # [T, E]
    if name == "heads_by_pos":

        def build(cells: Tensor) -> Tensor:  # cells: head * T + position
            heads, positions = cells // n_tokens, cells % n_tokens
            x = x0.repeat(len(cells), 1, 1)  # [n, T, E]
            x[torch.arange(len(cells)), positions] += deltas[heads, positions]
            return x

        values = _run(model, metric, layer, "mid", n_heads * n_tokens, build, step)
        return values.view(n_heads, n_tokens)
    return _run(model, metric, layer, "mid", n_heads, lambda heads: x0 + deltas[heads], step)


def _position_patch(name: str, layer: int, base: RunCache, source: RunCache):
    """(stream the patch is added to, what is added at each position, where it starts)."""
    if name == "resid":
        return base.resid_pre[layer], source.resid_pre[layer] - base.resid_pre[layer], "pre"
    if name == "attn":
        return base.resid_mid[layer], source.attn_out[layer] - base.attn_out[layer], "mid"
    return base.resid_post(layer), source.mlp_out[layer] - base.mlp_out[layer], "post"


def _head_deltas(
    model: GPTModel, name: str, layer: int, base: RunCache, source: RunCache
) -> Tensor:
    """What patching each head changes in the attention output: [H, T, E]."""
    if name == "pattern":  # the source's weights over the base run's values
        block = model.trf_blocks[layer]
        _, _, values = block.att.project(block.norm1(base.resid_pre[layer][None]))  # [1, H, T, d]
        z = (source.pattern[layer] @ values[0]).transpose(0, 1)  # [T, H, d_head]
    else:
        z = source.z[layer]  # [T, H, d_head]
    return head_output(model, layer, z - base.z[layer])  # [H, T, E]


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
    deltas = head_output(model, layer, source.z[layer] - base.z[layer])  # [H, T, E]
    if alpha is not None:
        deltas = deltas * alpha[:, None, None]
    if receiver.layer is None:  # the logits: the final stream plus the sender's change
        final = base.final

        def build(heads: Tensor) -> Tensor:
            return final + deltas[heads]

        return _run(model, metric, model.cfg.n_layers - 1, "post", n_heads, build, step)
    block = model.trf_blocks[receiver.layer]
    stream = base.resid_pre[receiver.layer]  # [T, E]
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


def path_attribution(
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
