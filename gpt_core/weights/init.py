"""GPT-2's own initialisation, seeded, for the offline default model."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..errors import Cancelled
from ..model import GPTModel, LayerNorm
from ..model.config import GPTConfig
from .hub import Progress


def empty_model(cfg: GPTConfig) -> GPTModel:
    """A model with allocated but unset weights: built on the meta device, so the default
    initialisation (seconds for gpt2-small) is not run only to be overwritten."""
    with torch.device("meta"):
        model = GPTModel(cfg)
    return model.to_empty(device="cpu")


@torch.no_grad()
def init_gpt2_weights(
    model: GPTModel,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> GPTModel:
    """normal(0, 0.02) for embeddings and linear weights, biases 0, LayerNorm scale 1 and
    shift 0; the two projections that write into the residual stream (attention out_proj
    and the second feed-forward linear) scaled by 1/sqrt(2 * n_layers), as GPT-2 does.
    progress(fraction, message) hears the parameters set so far after each module (a large
    model takes a minute on a laptop); cancel() is asked as often, and True raises Cancelled."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    residual_std = 0.02 / math.sqrt(2 * model.cfg.n_layers)
    total = sum(p.numel() for p in model.parameters())
    done = 0
    if progress is not None:
        progress(0.0, f"initialising random weights: 0 of {total:,} parameters")
    for name, module in model.named_modules():
        if cancel is not None and cancel():
            raise Cancelled("initialisation cancelled")
        if isinstance(module, (nn.Linear, nn.Embedding)):
            std = residual_std if name.endswith(("att.out_proj", "ff.layers.2")) else 0.02
            module.weight.normal_(0.0, std, generator=generator)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        elif isinstance(module, LayerNorm):
            module.scale.fill_(1.0)
            module.shift.zero_()
        else:
            continue
        done += sum(p.numel() for p in module.parameters(recurse=False))
        if progress is not None:
            progress(done / total, f"initialising random weights: {done:,} of {total:,} parameters")
    return model


def random_model(
    cfg: GPTConfig,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> GPTModel:
    return init_gpt2_weights(empty_model(cfg), seed, progress, cancel).eval()
