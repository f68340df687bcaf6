"""One run's activations, kept once per experiment, and each head's share of the
attention output. (The rest of a patched run: analysis/prefix_reuse.py.)"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...model import GPTModel
from ...probe.hook_points import hooked
from ...probe.stages import stage_key
from .result import Metric

# The stages a sweep patches, in every block, by their registry names.
PATCHED_STAGES = ("resid_mid", "attn/out", "ff/out", "attn/context", "attn/weights")


def block_input_key(layer: int) -> str:
    """The trace key of the residual stream entering block `layer`."""
    return stage_key("embeddings/sum") if layer == 0 else stage_key("out", layer - 1)


@dataclass(frozen=True)
class RunCache:
    """Activations of one run by trace key (batch dimension dropped): every block's input
    and output and its PATCHED_STAGES; with `grads`, the gradient of the metric with respect
    to each of them, by the same keys."""

    activations: dict[str, Tensor]
    value: float  # the metric
    n_layers: int
    grads: dict[str, Tensor] | None = None

    def __getitem__(self, key: str) -> Tensor:
        return self.activations[key]

    def at(self, name: str, layer: int) -> Tensor:
        """Stage `name` ("attn/context") of block `layer`."""
        return self.activations[stage_key(name, layer)]

    def block_input(self, layer: int) -> Tensor:
        return self.activations[block_input_key(layer)]  # [T, E]

    @property
    def final(self) -> Tensor:
        """The last block's output: [T, E]."""
        return self.at("out", self.n_layers - 1)

    def stream(self, start: str, layer: int) -> Tensor:
        """The residual stream of block `layer` "pre" (its input), "mid" (between attention
        and feed-forward) or "post" (its output): [T, E]."""
        if start == "pre":
            return self.block_input(layer)
        return self.at("resid_mid" if start == "mid" else "out", layer)


def record(
    model: GPTModel,
    ids: Tensor,
    metric: Metric,
    with_grads: bool = False,
    keep_weights: bool = True,
) -> RunCache:
    """Run `ids` [T] (already cut at the metric position) once, keeping every activation a
    sweep patches (the [H, T, T] attention weights only with keep_weights); with_grads
    also takes the metric's gradient with respect to each (by torch.autograd.grad, so no
    parameter gets a .grad)."""
    n_layers = model.cfg.n_layers
    names = [n for n in PATCHED_STAGES if keep_weights or n != "attn/weights"]
    keys = [stage_key("embeddings/sum")]
    keys += [stage_key(name, layer) for layer in range(n_layers) for name in (*names, "out")]
    # every activation gets a gradient, whatever parameters are frozen
    edits = {stage_key("embeddings/sum"): lambda out: out.detach().requires_grad_()}
    hooks = hooked(model, edits=edits if with_grads else None, keep=keys)
    with hooks as kept, torch.set_grad_enabled(with_grads):
        value = metric(_last_logits(model, ids))[0]
    activations = {key: tensor[0].detach() for key, tensor in kept.items()}
    grads = None
    if with_grads:
        found = torch.autograd.grad(value, list(kept.values()), allow_unused=True)
        grads = {
            key: torch.zeros_like(activations[key]) if grad is None else grad[0].detach()
            for key, grad in zip(kept, found, strict=True)
        }
    return RunCache(activations, float(value.detach()), n_layers, grads)


def _last_logits(model: GPTModel, ids: Tensor) -> Tensor:
    """The model's forward, with the output head at the last position only: [1, vocab]."""
    positions = torch.arange(len(ids), device=ids.device)
    x = model.drop_emb(model.tok_emb(ids[None]) + model.pos_emb(positions))  # [1, T, E]
    for block in model.trf_blocks:
        x = block(x)  # [1, T, E]
    return model.out_head(model.final_norm(x[:, -1:]))[:, 0]  # [1, vocab]


def head_output(model: GPTModel, layer: int, z: Tensor) -> Tensor:
    """Each head's contribution to the attention output, without the bias:
    z [..., T, H, d_head] -> [..., H, T, E]."""
    att = model.trf_blocks[layer].att
    heads, d_head = att.num_heads, att.head_dim
    w_o = att.out_proj.weight.view(att.d_out, heads, d_head)  # [E, H, d_head]
    return torch.einsum("...thd,ehd->...hte", z, w_o)
