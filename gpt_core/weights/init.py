"""GPT-2's own initialisation, seeded, for the offline default model."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..model import GPTModel, LayerNorm
from ..model.config import GPTConfig


def empty_model(cfg: GPTConfig) -> GPTModel:
    """A model with allocated but unset weights: built on the meta device, so the default
    initialisation (seconds for gpt2-small) is not run only to be overwritten."""
    with torch.device("meta"):
        model = GPTModel(cfg)
    return model.to_empty(device="cpu")


@torch.no_grad()
def init_gpt2_weights(model: GPTModel, seed: int = 0) -> GPTModel:
    """normal(0, 0.02) for embeddings and linear weights, biases 0, LayerNorm scale 1 and
    shift 0; the two projections that write into the residual stream (attention out_proj
    and the second feed-forward linear) scaled by 1/sqrt(2 * n_layers), as GPT-2 does."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    residual_std = 0.02 / math.sqrt(2 * model.cfg.n_layers)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            std = residual_std if name.endswith(("att.out_proj", "ff.layers.2")) else 0.02
            module.weight.normal_(0.0, std, generator=generator)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        elif isinstance(module, LayerNorm):
            module.scale.fill_(1.0)
            module.shift.zero_()
    return model


def random_model(cfg: GPTConfig, seed: int = 0) -> GPTModel:
    return init_gpt2_weights(empty_model(cfg), seed).eval()
