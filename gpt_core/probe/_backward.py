"""The backward step's loss, its summary (BackwardInfo) and the optional SGD step."""

from __future__ import annotations

import copy
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
    dropout_seed: int | None = None  # training mode, its masks seeded so; None: evaluation mode


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
    weight_norms = _weight_norms(params)
    order_norms = torch.stack([n for _, n in recorder.order]).tolist() if recorder.order else []
    # The interventions stay on for the further forwards; the recording pauses.
    recorder.paused = True
    eval_loss = None if request.dropout_seed is None else _loss_in_eval_mode(model, request, idx)
    loss_after = None
    if request.sgd_lr is not None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        loss_after = _loss_after_sgd(model, params, grads, request, idx)
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
        eval_loss=eval_loss,
    )


def _loss_in_eval_mode(model: GPTModel, request: BackwardRequest, idx: Tensor) -> float:
    """A training-mode run's loss again with dropout off, to set beside it."""
    model.train(False)
    try:
        return float(loss_of(model(idx)[0], idx[0], request.target))
    finally:
        model.train(True)


def _weight_norms(params: list[nn.Parameter]) -> list[float]:
    """Every parameter's L2 norm, read afresh each time: no cache key sees an edit through
    `p.data` (it leaves p._version and p.data_ptr() as they were), and reading the
    weights costs about 25 ms for gpt2-small, against a backward step's 400 ms at 16 tokens."""
    return torch.stack(torch._foreach_norm([p.detach() for p in params])).tolist()


def _loss_after_sgd(model: GPTModel, params, grads, request: BackwardRequest, idx) -> float:
    """The loss after one SGD step, computed on a copy of the model that holds the stepped
    weights: the model's own parameters are never written, so an interrupt (Ctrl+C) at any
    point leaves them as they were. The copy carries the model's hooks, so the interventions act."""
    stepped = torch._foreach_add([p.detach() for p in params], grads, alpha=-request.sgd_lr)
    # deepcopy takes each memo entry as the copy of that object: the stepped tensors
    # stand in for the parameters, and everything else is copied (no weights besides them).
    memo = {
        id(p): nn.Parameter(s, requires_grad=False) for p, s in zip(params, stepped, strict=True)
    }
    stepped_model = copy.deepcopy(model, memo)
    if request.dropout_seed is not None:  # the same masks again: only the weights differ
        torch.manual_seed(request.dropout_seed)
    return float(loss_of(stepped_model(idx)[0], idx[0], request.target))
