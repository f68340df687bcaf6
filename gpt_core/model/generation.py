"""Text generation: the seed's greedy loop, plus sampling with temperature, top-k and top-p
(through sampling.next_token_distribution)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import PromptError
from .gpt_model import GPTModel
from .sampling import SamplingDistribution, check_sampling, draw, next_token_distribution


def sample_next_token(
    logits: Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> tuple[int, SamplingDistribution]:
    """One next token from one position's logits [vocab], drawn from
    next_token_distribution (greedy at temperature 0), and that distribution."""
    check_sampling(temperature, top_k, top_p)
    if not bool(torch.isfinite(logits).all()):
        raise PromptError(
            "the model's next-token logits are not finite (NaN or Inf), so no token can be "
            "picked; its weights hold non-finite values"
        )
    distribution = next_token_distribution(logits, temperature, top_k, top_p)
    return draw(distribution, generator), distribution


def pick_next_token(
    logits: Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> int:
    """sample_next_token's token alone."""
    return sample_next_token(logits, temperature, top_k, top_p, generator)[0]


@torch.inference_mode()
def generate(
    model: GPTModel,
    ids: Sequence[int] | Tensor,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int | None = None,
    eos_id: int | None = None,
    top_p: float | None = None,
) -> list[int]:
    """The prompt's ids followed by up to `max_new_tokens` generated ones. Temperature 0 is
    the seed's generate_text_simple: crop to the context, take the last position's logits,
    argmax. Sampling (÷ temperature, then top-k, then top-p) with a seed is reproducible.
    Stops after emitting `eos_id`."""
    device = next(model.parameters()).device
    idx = torch.as_tensor(ids, dtype=torch.long, device=device).reshape(1, -1)  # [1, T]
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -model.cfg.context_length :]  # [1, <= context]
            logits = model(idx_cond)[0, -1]  # [vocab]
            next_id = pick_next_token(logits, temperature, top_k, top_p, generator)
            idx = torch.cat([idx, idx.new_tensor([[next_id]])], dim=1)  # [1, T + 1]
            if eos_id is not None and next_id == eos_id:
                break
    finally:
        model.train(was_training)
    return idx[0].tolist()
