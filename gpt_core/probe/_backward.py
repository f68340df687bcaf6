"""The backward step's loss, its summary (BackwardInfo) and the optional SGD step."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import PromptError
from ..model import GPTModel
from ._hooks import Recorder
from .trace import BackwardInfo, ParamGrad


@dataclass(frozen=True)
class BackwardRequest:
    target: tuple[int, int] | None  # (position, token id), or None: whole-prompt loss
    sgd_lr: float | None  # also take one SGD step with this learning rate


def check_target(target: tuple[int, int] | None, n_tokens: int, vocab_size: int) -> None:
    if target is None:
        if n_tokens < 2:
            raise PromptError(
                "a one-token prompt has no next token to predict; add text or pick a target token"
            )
        return
    position, token_id = target
    if not 0 <= position < n_tokens:
        raise PromptError(f"target position {position} is outside the prompt (0..{n_tokens - 1})")
    if not 0 <= token_id < vocab_size:
        raise PromptError(f"target token id {token_id} is outside the vocabulary")


def loss_of(logits: Tensor, ids: Tensor, target: tuple[int, int] | None) -> Tensor:
    """logits [T, vocab], ids [T] -> the scalar loss backward() starts from."""
    if target is None:  # mean next-token cross-entropy: position t predicts token t + 1
        return F.cross_entropy(logits[:-1], ids[1:])
    position, token_id = target
    return -torch.log_softmax(logits[position], dim=-1)[token_id]  # -log p(token | <= position)


def backward_info(
    model: GPTModel,
    params: list[nn.Parameter],
    param_grad_norms: list[Tensor | None],
    recorder: Recorder,
    loss: Tensor,
    idx: Tensor,
    request: BackwardRequest,
) -> BackwardInfo:
    names = [name for name, _ in model.named_parameters()]
    zero = torch.zeros((), device=idx.device)
    # A parameter that backward never reached (in a skipped block) has no gradient.
    grad_norms = torch.stack([zero if n is None else n for n in param_grad_norms]).tolist()
    weight_norms = _weight_norms(model, params)
    order_norms = torch.stack([n for _, n in recorder.order]).tolist() if recorder.order else []
    loss_after = None
    if request.sgd_lr is not None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        # The interventions stay on for the second forward; the recording pauses.
        recorder.paused = True
        loss_after = _loss_after_sgd(params, grads, request, lambda: model(idx)[0], idx)
    target = request.target
    return BackwardInfo(
        loss=float(loss.detach()),
        target=tuple(int(v) for v in target) if target is not None else None,
        order=tuple((key, n) for (key, _), n in zip(recorder.order, order_norms, strict=True)),
        params=tuple(
            ParamGrad(name, tuple(p.shape), g, w)
            for name, p, g, w in zip(names, params, grad_norms, weight_norms, strict=True)
        ),
        sgd_lr=request.sgd_lr,
        loss_after_sgd=loss_after,
    )


_WEIGHT_NORMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _weight_norms(model: GPTModel, params: list[nn.Parameter]) -> list[float]:
    """Every parameter's L2 norm, remembered until a parameter changes: reading all the
    weights costs as much as a tenth of a backward pass."""
    versions = tuple((p._version, p.data_ptr()) for p in params)
    cached = _WEIGHT_NORMS.get(model)
    if cached is None or cached[0] != versions:
        norms = torch.stack(torch._foreach_norm([p.detach() for p in params])).tolist()
        cached = _WEIGHT_NORMS[model] = (versions, norms)
    return cached[1]


def _loss_after_sgd(params, grads, request: BackwardRequest, forward, idx) -> float:
    """One SGD step, the loss with the stepped weights, then the weights put back exactly
    (from a copy, since p - lr*g + lr*g need not round back to p)."""
    saved = [p.detach().clone() for p in params]
    try:
        torch._foreach_add_([p.detach() for p in params], grads, alpha=-request.sgd_lr)
        with torch.no_grad():
            return float(loss_of(forward(), idx[0], request.target))
    finally:
        for p, original in zip(params, saved, strict=True):
            p.detach().copy_(original)
