"""Direct logit attribution: the final residual stream at the metric position is the sum of
the embeddings, every head's output, every block's out_proj bias and every feed-forward
output. With the final LayerNorm's scale fixed at the run's own value, the norm is linear,
so the logit difference splits into one term per part plus the norm's shift term, exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...model import GPTModel
from ._runs import RunCache, head_output
from .result import Metric


def logit_direction(model: GPTModel, metric: Metric) -> Tensor:
    """The unembedding direction of logit[answer] − logit[distractor] (or logit[answer])."""
    weight = model.out_head.weight  # [vocab, E]
    direction = weight[metric.answer]
    return direction - weight[metric.distractor] if metric.distractor is not None else direction


@torch.no_grad()
def direct_logit_attribution(model: GPTModel, run: RunCache, metric: Metric) -> dict[str, float]:
    """Each part's direct share of logit[answer] − logit[distractor] at the metric
    position (the last of the run), through the final norm with the run's own scale."""
    norm, cfg = model.final_norm, model.cfg
    final = run.final[-1].double()  # [E]
    sigma = torch.sqrt(((final - final.mean()) ** 2).mean() + norm.eps)
    direction = logit_direction(model, metric).double() * norm.scale.double() / sigma  # [E]
    parts: dict[str, Tensor] = {"embeddings": run.block_input(0)[-1]}
    for layer in range(cfg.n_layers):
        heads = head_output(model, layer, run.at("attn/context", layer)[-1:])[:, 0]  # [H, E]
        for head in range(cfg.n_heads):
            parts[f"L{layer}H{head}"] = heads[head]
        parts[f"L{layer} attn bias"] = model.trf_blocks[layer].att.out_proj.bias
        parts[f"L{layer} mlp"] = run.at("ff/out", layer)[-1]
    shares = {}
    for name, part in parts.items():
        part = part.detach().double()
        shares[name] = float((part - part.mean()) @ direction)
    unnormalised = logit_direction(model, metric).double()
    shares["final norm shift"] = float(norm.shift.detach().double() @ unnormalised)
    return shares
