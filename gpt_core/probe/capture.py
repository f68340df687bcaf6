"""The probe: run the model once with hooks and return a Trace of every stage.

capture() records a forward pass; backward_step() also runs one backward() and records the
gradient at every stage, in the order the backward pass reached it. Interventions act
through hooks too (_hooks.py). After any run, one that raised included, the model has no
hooks, its weights are as they were and no parameter has a .grad.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..model import GPTModel, check_token_ids, get_tokenizer
from ..model.tokenizer import check_prompt_ids
from ..util.devices import resolve_device
from ._backward import BackwardRequest, backward_info, check_target, loss_of
from ._causal_pack import PackedCausal, pack_causal
from ._dropout import record_dropout_masks, seeded_dropout
from ._hooks import Recorder, StopCheck, hooks, install_interventions, install_stop_check
from ._logits import summarize_logits
from .hook_points import Edit, install_edits
from .interventions import Interventions
from .stage_spec import CAUSAL_HEADS, TOKEN_STAT, UNBATCHED_TOKENS_DIMS
from .stages import LOGITS, grad_key, parse_key
from .trace import DEFAULT_TOP_K, Trace, make_stages


@dataclass(frozen=True)
class _RunOptions:
    top_k: int = DEFAULT_TOP_K  # predictions kept per position
    train: bool = False  # training mode: dropout on, its masks recorded
    dropout_seed: int = 0  # the random seed of those masks
    track_token_ids: Sequence[int] | None = None  # one id per position whose probability to keep
    should_stop: StopCheck | None = None  # polled before each block
    edits: Mapping[str, Edit] | None = None  # stages replaced by an edit of their output


def capture(
    model: GPTModel,
    token_ids: Sequence[int] | Tensor,
    interventions: Interventions | None = None,
    device: str | torch.device = "auto",
    *,
    top_k: int = DEFAULT_TOP_K,
    train: bool = False,
    dropout_seed: int = 0,
    track_token_ids: Sequence[int] | None = None,
    should_stop: StopCheck | None = None,
    edits: Mapping[str, Edit] | None = None,
) -> Trace:
    """One forward pass, every stage recorded.

    device: "cpu", "cuda" or "auto" (CUDA when present); the model is moved there.
    train: training mode: dropout on, as when the model is trained, with its masks drawn
        right after torch.manual_seed(dropout_seed) and recorded as stages
        ("blocks/3/attn/dropout"). The caller's random state is as it was afterwards.
    track_token_ids: one token id per position whose probability to record
        (logits/tracked_probs); compare() uses it for exact before/after probabilities.
    should_stop: polled before each block; when it returns True the run raises Cancelled.
    edits: stages replaced by an edit of their output, by trace key, applied after the
        interventions and before the stage is recorded (an SAE's feature switches).
    """
    options = _RunOptions(top_k, train, dropout_seed, track_token_ids, should_stop, edits)
    return _run(model, token_ids, interventions, device, options, None)


def backward_step(
    model: GPTModel,
    token_ids: Sequence[int] | Tensor,
    target: tuple[int, int] | None = None,
    interventions: Interventions | None = None,
    sgd_lr: float | None = None,
    device: str | torch.device = "auto",
    **capture_options,
) -> Trace:
    """capture() plus one backward(): the Trace also holds grad/<key> for every stage,
    each parameter's gradient norm and gradient/weight ratio, and the order in which the
    backward pass reached the stages.

    target: None for the mean next-token cross-entropy over the prompt, or
        (position, token id) for -log p(token id | tokens up to position).
    sgd_lr: also take one SGD step with this learning rate and report the loss after it;
        the step is taken on a copy of the model, whose own weights are never written (in
        training mode the stepped forward draws the same dropout masks again).
    capture_options: top_k, train, dropout_seed, track_token_ids, should_stop and edits, as
        for capture(). In training mode the loss with dropout off is also reported (eval_loss).
    """
    options = _RunOptions(**capture_options)
    request = BackwardRequest(target, sgd_lr, options.dropout_seed if options.train else None)
    return _run(model, token_ids, interventions, device, options, request)


def _run(
    model: GPTModel,
    token_ids,
    interventions: Interventions | None,
    device,
    options: _RunOptions,
    request: BackwardRequest | None,
) -> Trace:
    start = time.perf_counter()
    interventions = interventions or Interventions()
    cfg = model.cfg
    dev = resolve_device(device)
    if next(model.parameters()).device != dev:
        model.to(dev)
    idx = torch.tensor(np.asarray(token_ids, dtype=np.int64), device=dev).reshape(1, -1)
    check_token_ids(idx, cfg)  # [1, T]
    check_prompt_ids(idx[0].tolist())
    top_k = max(1, min(options.top_k, cfg.vocab_size))
    tracked = _tracked_ids(options.track_token_ids, idx.shape[1], dev)
    if request is not None:
        check_target(request.target, idx.shape[1], cfg.vocab_size)

    was_training = model.training
    params = list(model.parameters())
    try:
        with seeded_dropout(options.train, options.dropout_seed, dev), hooks() as hook_set:
            if model.training != options.train:  # train() walks every module: skip a no-op
                model.train(options.train)
            install_interventions(hook_set, model, interventions)
            install_edits(hook_set, model, options.edits or {})
            if options.should_stop is not None:
                install_stop_check(hook_set, model, options.should_stop)
            recorder = Recorder(hook_set, model, with_grads=request is not None)
            if options.train:
                record_dropout_masks(recorder, model)
            if request is None:
                with torch.inference_mode():
                    logits = model(idx)[0]  # [T, vocab]
                    summary = summarize_logits(logits, idx[0], top_k, tracked)
                info = None
            else:
                summary, info = _forward_backward(
                    model, params, recorder, idx, top_k, tracked, request
                )
            arrays = _arrays(recorder, summary, idx, with_grads=info is not None)
    finally:
        for p in params:
            p.grad = None
        if model.training != was_training:
            model.train(was_training)

    per_token = arrays.get("loss/per_token")
    shapes = {k: tuple(a.shape) for k, a in arrays.items()}
    return Trace(
        token_ids=arrays["tokens/ids"],
        token_strings=tuple(get_tokenizer().displays(arrays["tokens/ids"].tolist())),
        stages=make_stages(cfg, shapes),
        store=arrays,
        config=cfg,
        device=str(dev),
        interventions=interventions,
        loss=float(per_token.mean()) if per_token is not None and per_token.size else None,
        top_k=top_k,
        run_seconds=time.perf_counter() - start,
        backward=info,
        dropout_seed=options.dropout_seed if options.train else None,
    )


def _forward_backward(model, params, recorder: Recorder, idx, top_k, tracked, request):
    """The forward with gradients on, one backward(), and what it found."""
    for p in params:
        p.grad = None
    param_grad_norms = recorder.watch_param_grads(params)
    with torch.enable_grad():
        logits_batch = model(idx)  # [1, T, vocab]
        logits = logits_batch[0]  # [T, vocab]
        recorder.watch_grad(LOGITS, logits_batch)
        loss = loss_of(logits, idx[0], request.target)
        loss.backward()
    with torch.no_grad():
        summary = summarize_logits(logits.detach(), idx[0], top_k, tracked)
        info = backward_info(model, params, param_grad_norms, recorder, loss, idx, request)
    return summary, info


def _arrays(recorder: Recorder, summary: dict[str, Tensor], idx: Tensor, with_grads: bool):
    arrays = {key: _stored(key, t) for key, t in recorder.outputs.items()}
    arrays.update({k: _numpy(v) for k, v in summary.items()})
    arrays["tokens/ids"] = idx[0].cpu().numpy()
    if with_grads:
        for key, grad in recorder.grads.items():
            if key == LOGITS:
                arrays[grad_key("logits/last")] = _numpy(grad)  # [vocab], the last position
            else:
                arrays[grad_key(key)] = _stored(key, grad)
    return arrays


def _tracked_ids(track_token_ids, n_tokens, dev) -> Tensor | None:
    if track_token_ids is None:
        return None
    tracked = torch.tensor(np.asarray(track_token_ids, dtype=np.int64), device=dev)
    if tracked.shape != (n_tokens,):
        raise ValueError(
            f"track_token_ids needs one id per position ({n_tokens}), got {tuple(tracked.shape)}"
        )
    return tracked


def _unbatched(key: str, tensor: Tensor) -> Tensor:
    """Drop the batch dimension (and the kept size-1 dimension of LayerNorm statistics)."""
    layout = parse_key(key)[0].layout
    if layout == UNBATCHED_TOKENS_DIMS:
        return tensor  # [T, emb]: computed without a batch dimension
    if layout == TOKEN_STAT:
        return tensor[0, :, 0]  # [B, T, 1] -> [T]
    return tensor[0]


def _stored(key: str, value: Tensor | dict[str, Tensor]) -> np.ndarray | PackedCausal:
    """What the Trace keeps for one stage or its gradient: attention weights packed, the
    rest as arrays."""
    if isinstance(value, dict):  # packed by a hook
        return PackedCausal.from_parts(value)
    if parse_key(key)[0].layout == CAUSAL_HEADS:
        return PackedCausal.from_parts(pack_causal(value[0]))
    return _numpy(_unbatched(key, value))


def _numpy(tensor: Tensor) -> np.ndarray:
    """float32 (or int64 ids) on the CPU; no copy when the tensor is already there."""
    tensor = tensor.detach()
    if tensor.is_floating_point():
        tensor = tensor.float()
    return tensor.cpu().numpy()
