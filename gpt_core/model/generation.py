"""Text generation: the seed's greedy loop, plus temperature and top-k sampling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import PromptError
from .gpt_model import GPTModel


def next_token_distribution(
    logits: Tensor, temperature: float = 0.0, top_k: int | None = None
) -> Tensor | None:
    """Probabilities to sample the next token from one position's logits [vocab];
    None for temperature 0, which means argmax."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if temperature == 0:
        return None
    logits = logits.float()
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k).values[-1]
        logits = torch.where(logits < kth, torch.full_like(logits, -torch.inf), logits)
    return torch.softmax(logits / temperature, dim=-1)


def pick_next_token(
    logits: Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> int:
    """One next token from one position's logits [vocab]."""
    if not bool(torch.isfinite(logits).all()):
        raise PromptError(
            "the model's next-token logits are not finite (NaN or Inf), so no token can be "
            "picked; its weights hold non-finite values"
        )
    probs = next_token_distribution(logits, temperature, top_k)
    if probs is None:
        return int(torch.argmax(logits))
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))


@torch.inference_mode()
def generate(
    model: GPTModel,
    ids: Sequence[int] | Tensor,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int | None = None,
    eos_id: int | None = None,
) -> list[int]:
    """The prompt's ids followed by up to `max_new_tokens` generated ones. Temperature 0 is
    the seed's generate_text_simple: crop to the context, take the last position's logits,
    argmax. Sampling with a seed is reproducible. Stops after emitting `eos_id`."""
    device = next(model.parameters()).device
    idx = torch.as_tensor(ids, dtype=torch.long, device=device).reshape(1, -1)  # [1, T]
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -model.cfg.context_length :]  # [1, <= context]
            logits = model(idx_cond)[0, -1]  # [vocab]
            next_id = pick_next_token(logits, temperature, top_k, generator)
            idx = torch.cat([idx, idx.new_tensor([[next_id]])], dim=1)  # [1, T + 1]
            if eos_id is not None and next_id == eos_id:
                break
    finally:
        model.train(was_training)
    return idx[0].tolist()
