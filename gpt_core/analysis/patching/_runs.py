"""One run's activations, kept once per experiment, and the rest of a run started from a
patched residual stream at any block.

Everything here reads the model's own modules: a patched run is `block(x)` for the blocks
after the patch, then the final norm and the output head at the metric position only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ...model import GPTModel
from ...probe._hooks import hooks
from .result import Metric


@dataclass
class RunCache:
    """Activations of one run (batch dimension dropped), per block; with `grads`, also
    the gradient of the metric with respect to each of them."""

    resid_pre: list[Tensor] = field(default_factory=list)  # L x [T, E], block inputs
    resid_mid: list[Tensor] = field(default_factory=list)  # L x [T, E]
    attn_out: list[Tensor] = field(default_factory=list)  # L x [T, E], after out_proj
    mlp_out: list[Tensor] = field(default_factory=list)  # L x [T, E]
    z: list[Tensor] = field(default_factory=list)  # L x [T, H, d_head], context vectors
    pattern: list[Tensor] = field(default_factory=list)  # L x [H, T, T], attention weights
    final: Tensor | None = None  # [T, E], the last block's output
    value: float = 0.0  # the metric
    grads: dict[str, list[Tensor]] | None = None  # name -> L x gradient, as above

    def resid_post(self, layer: int) -> Tensor:
        """The residual stream after block `layer`."""
        return self.resid_pre[layer + 1] if layer + 1 < len(self.resid_pre) else self.final


# (cache list, module path in a block, whether the module's input rather than its output)
_POINTS = (
    ("resid_pre", "", True),
    ("resid_mid", "resid_mid_point", False),
    ("attn_out", "att", False),
    ("mlp_out", "ff", False),
    ("z", "att.context_point", False),
    ("pattern", "att.weights_point", False),
)


def record(
    model: GPTModel,
    ids: Tensor,
    metric: Metric,
    with_grads: bool = False,
    keep_patterns: bool = True,
) -> RunCache:
    """Run `ids` [T] (already cut at the metric position) once, keeping every activation a
    sweep patches (the [H, T, T] attention weights only with keep_patterns); with_grads
    also takes the metric's gradient with respect to each (by torch.autograd.grad, so no
    parameter gets a .grad)."""
    cache = RunCache()
    watched: list[tuple[str, Tensor]] = []  # (name, activation with its graph), in order
    points = [p for p in _POINTS if keep_patterns or p[0] != "pattern"]
    with hooks() as hook_set, torch.set_grad_enabled(with_grads):
        if with_grads:  # every activation gets a gradient, whatever parameters are frozen
            hook_set.forward_pre(
                model.trf_blocks[0], lambda m, args: (args[0].detach().requires_grad_(),)
            )
        for block in model.trf_blocks:
            for name, path, is_input in points:
                module = block.get_submodule(path) if path else block
                keep = _keeper(cache, name, watched)
                if is_input:
                    hook_set.forward_pre(module, lambda m, args, keep=keep: keep(args[0]))
                else:
                    hook_set.forward(module, lambda m, args, out, keep=keep: keep(out))
        value = metric(_last_logits(model, ids, cache))[0]
        if with_grads:
            per_block = len(points) * model.cfg.n_layers
            assert len(watched) == per_block, f"{len(watched)} of {per_block} activations"
            grads = torch.autograd.grad(value, [t for _, t in watched], allow_unused=True)
            cache.grads = {name: [] for name, _, _ in points}
            for (name, tensor), grad in zip(watched, grads, strict=True):
                zero = torch.zeros_like(tensor[0])
                cache.grads[name].append(zero if grad is None else grad[0].detach())
    cache.value = float(value.detach())
    return cache


def _last_logits(model: GPTModel, ids: Tensor, cache: RunCache) -> Tensor:
    """The model's forward, with the output head at the last position only: [1, vocab]."""
    positions = torch.arange(len(ids), device=ids.device)
    x = model.drop_emb(model.tok_emb(ids[None]) + model.pos_emb(positions))  # [1, T, E]
    for block in model.trf_blocks:
        x = block(x)  # [1, T, E]
    cache.final = x[0].detach()
    return model.out_head(model.final_norm(x[:, -1:]))[:, 0]  # [1, vocab]


def _keeper(cache: RunCache, name: str, watched: list):
    def keep(tensor: Tensor) -> None:
        getattr(cache, name).append(tensor[0].detach())
        if tensor.requires_grad:
            watched.append((name, tensor))

    return keep


def finish(model: GPTModel, x: Tensor, layer: int, start: str, metric: Metric) -> Tensor:
    """The metric of runs whose residual stream at block `layer` is `x` [N, T, E]:
    start "pre" is the block's input, "mid" its stream between attention and feed-forward,
    "post" its output. Returns [N]. The last block works out the last position only: it
    is all the metric reads."""
    blocks, last = model.trf_blocks, model.cfg.n_layers - 1
    if start == "mid":
        block = blocks[layer]
        if layer == last:
            x = x[:, -1:]
        x = x + block.ff(block.norm2(x))  # [N, T, E]
    if start != "pre":
        layer += 1
    for index in range(layer, last + 1):
        x = blocks[index](x) if index < last else _last_position(blocks[index], x)  # [N, T, E]
    final = model.final_norm(x[:, -1:])  # [N, 1, E]
    return metric(model.out_head(final)[:, 0])  # [N]


def _last_position(block, x: Tensor) -> Tensor:
    """A block's output at the last position only: [N, T, E] -> [N, 1, E]."""
    queries, keys, values = block.att.project(block.norm1(x))  # [N, H, T, d_head] each
    x = x[:, -1:] + block.att.attend(queries[:, :, -1:], keys, values)  # [N, 1, E]
    return x + block.ff(block.norm2(x))


def batch_size(model: GPTModel, n_tokens: int, budget_bytes: int = 2**29) -> int:
    """Patched runs per forward that keep the working memory near `budget_bytes`: the
    activations of one block, the attention weights and the hidden layer of the MLP."""
    cfg = model.cfg
    per_run = 4 * n_tokens * (12 * cfg.emb_dim + 3 * cfg.n_heads * n_tokens)
    return max(1, budget_bytes // per_run)


def head_output(model: GPTModel, layer: int, z: Tensor) -> Tensor:
    """Each head's contribution to the attention output, without the bias:
    z [..., T, H, d_head] -> [..., H, T, E]."""
    att = model.trf_blocks[layer].att
    heads, d_head = att.num_heads, att.head_dim
    w_o = att.out_proj.weight.view(att.d_out, heads, d_head)  # [E, H, d_head]
    return torch.einsum("...thd,ehd->...hte", z, w_o)
