"""The probe: run the model once with hooks and return a Trace of every stage.

capture() records a forward pass; backward_step() also runs one backward() and records the
gradient at every stage, in the order the backward pass reached it. Interventions act
through hooks too. Every hook lives inside `hooks()`, which removes them all in `finally`:
after any run, one that raised included, the model has no hooks, its weights are as they
were and no parameter has a .grad.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from .causal_pack import PackedCausal, pack_causal
from .devices import resolve_device
from .errors import Cancelled, PromptError
from .interventions import Interventions
from .model import GPTModel, check_token_ids
from .predictions import summarize_logits
from .stages import stage_specs
from .tokenizer import get_tokenizer
from .trace import BackwardInfo, ParamGrad, Trace, make_stages

DEFAULT_TOP_K = 20
StopCheck = Callable[[], bool]


class HookSet:
    """Collects hook handles so they can all be removed together."""

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []

    def forward(self, module: nn.Module, fn) -> None:
        self._handles.append(module.register_forward_hook(fn))

    def forward_pre(self, module: nn.Module, fn) -> None:
        self._handles.append(module.register_forward_pre_hook(fn))

    def tensor(self, tensor: Tensor, fn) -> None:
        self._handles.append(tensor.register_hook(fn))

    def grad_accumulated(self, param: nn.Parameter, fn) -> None:
        self._handles.append(param.register_post_accumulate_grad_hook(fn))

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()


@contextlib.contextmanager
def hooks() -> Iterator[HookSet]:
    hook_set = HookSet()
    try:
        yield hook_set
    finally:
        hook_set.remove()


def install_interventions(hook_set: HookSet, model: GPTModel, interventions: Interventions) -> None:
    """Hooks that switch heads off (on their context vectors) and skip blocks."""
    interventions.check(model.cfg)
    for layer in sorted(interventions.skip_layers):
        hook_set.forward(model.trf_blocks[layer], lambda module, args, output: args[0])
    for layer in sorted({layer for layer, _ in interventions.ablate_heads}):
        hook_set.forward(
            model.trf_blocks[layer].att.context_point,
            _head_ablation(interventions.heads_in(layer), interventions.mode),
        )


def _head_ablation(heads: list[int], mode: str):
    def hook(module, args, context: Tensor) -> Tensor:  # context: [B, T, H, d_head]
        context = context.clone()
        if mode == "zero":
            context[:, :, heads, :] = 0.0
        else:  # "mean": each switched-off head's average context vector over the positions
            context[:, :, heads, :] = context[:, :, heads, :].mean(dim=1, keepdim=True)
        return context

    return hook


class _Recorder:
    """Forward hooks that keep each stage's output, and with gradients on, tensor hooks
    that keep each stage's gradient and note the order in which backward reached it."""

    def __init__(self, hook_set: HookSet, model: GPTModel, with_grads: bool, should_stop):
        self.hook_set = hook_set
        self.with_grads = with_grads
        self.paused = False  # while True, forwards run through the hooks unrecorded
        self.outputs: dict[str, Tensor] = {}
        self.grads: dict[str, Tensor] = {}
        self.order: list[tuple[str, Tensor]] = []  # (key, gradient norm as a 0-d tensor)
        for key, module in _stage_modules(model):
            hook_set.forward(module, self._keeper(key))
        if should_stop is not None:

            def stop_if_asked(module, args):
                if should_stop():
                    raise Cancelled("run cancelled")

            for block in model.trf_blocks:
                hook_set.forward_pre(block, stop_if_asked)

    def _keeper(self, key: str):
        packs = key.endswith("/attn/weights")

        def hook(module, args, output: Tensor) -> None:
            if self.paused:
                return
            if self.with_grads and output.requires_grad:
                self.outputs[key] = output
                self.watch_grad(key, output)
            else:  # pack now, so the dense [B, H, T, T] weights are freed after the block
                self.outputs[key] = pack_causal(output[0]) if packs else output

        return hook

    def watch_grad(self, key: str, tensor: Tensor) -> None:
        def on_grad(grad: Tensor) -> None:
            # Of the [1, T, vocab] logits gradient only the last position is kept.
            self.grads[key] = grad[0, -1].clone() if key == "logits" else grad
            self.order.append((key, torch.linalg.vector_norm(grad)))

        self.hook_set.tensor(tensor, on_grad)

    def watch_param_grads(self, params: list[nn.Parameter]) -> list[Tensor | None]:
        """Each parameter's gradient norm, taken as soon as backward has written the
        gradient (while it is still in cache) rather than in a second pass afterwards."""
        norms: list[Tensor | None] = [None] * len(params)
        for i, param in enumerate(params):

            def on_accumulated(p: Tensor, i: int = i) -> None:
                norms[i] = torch.linalg.vector_norm(p.grad)

            self.hook_set.grad_accumulated(param, on_accumulated)
        return norms


_STAGE_MODULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _stage_modules(model: GPTModel) -> list[tuple[str, nn.Module]]:
    """(trace key, module that produces it) for every recorded stage; found once per model."""
    if model not in _STAGE_MODULES:
        modules = dict(model.named_modules())
        pairs = []
        for spec, layer in stage_specs(model.cfg):
            if spec.kind == "logits":
                continue  # taken from the model's return value
            fill = {} if layer is None else {"i": layer}
            pairs.append((spec.key.format(**fill), modules[spec.module.format(**fill)]))
        _STAGE_MODULES[model] = pairs
    return _STAGE_MODULES[model]


def capture(
    model: GPTModel,
    token_ids: Sequence[int] | Tensor,
    interventions: Interventions | None = None,
    device: str | torch.device = "auto",
    *,
    top_k: int = DEFAULT_TOP_K,
    train: bool = False,
    seed: int | None = None,
    track_token_ids: Sequence[int] | None = None,
    should_stop: StopCheck | None = None,
) -> Trace:
    """One forward pass, every stage recorded.

    device: "cpu", "cuda" or "auto" (CUDA when present); the model is moved there.
    train: run with train-mode dropout, reproducibly when `seed` is given.
    track_token_ids: one token id per position whose probability to record
        (logits/tracked_probs); compare() uses it for exact before/after probabilities.
    should_stop: polled before each block; when it returns True the run raises Cancelled.
    """
    options = _RunOptions(top_k, train, seed, track_token_ids, should_stop)
    return _run(model, token_ids, interventions, device, options, backward=None)


def backward_step(
    model: GPTModel,
    token_ids: Sequence[int] | Tensor,
    target: tuple[int, int] | None = None,
    interventions: Interventions | None = None,
    sgd_lr: float | None = None,
    device: str | torch.device = "auto",
    *,
    top_k: int = DEFAULT_TOP_K,
    train: bool = False,
    seed: int | None = None,
    track_token_ids: Sequence[int] | None = None,
    should_stop: StopCheck | None = None,
) -> Trace:
    """capture() plus one backward(): the Trace also holds grad/<key> for every stage,
    each parameter's gradient norm and gradient/weight ratio, and the order in which the
    backward pass reached the stages.

    target: None for the mean next-token cross-entropy over the prompt, or
        (position, token id) for -log p(token id | tokens up to position).
    sgd_lr: also take one SGD step with this learning rate and report the loss after it;
        the weights are then restored bit for bit.
    """
    options = _RunOptions(top_k, train, seed, track_token_ids, should_stop)
    return _run(model, token_ids, interventions, device, options, backward=(target, sgd_lr))


@dataclass(frozen=True)
class _RunOptions:
    top_k: int  # predictions kept per position
    train: bool  # train-mode dropout
    seed: int | None  # seeds that dropout
    track_token_ids: Sequence[int] | None  # one id per position whose probability to record
    should_stop: StopCheck | None  # polled before each block


def _run(model, token_ids, interventions, device, options: _RunOptions, backward) -> Trace:
    start = time.perf_counter()
    top_k, train, seed = options.top_k, options.train, options.seed
    interventions = interventions or Interventions()
    cfg = model.cfg
    dev = resolve_device(device)
    if next(model.parameters()).device != dev:
        model.to(dev)
    idx = torch.tensor(np.asarray(token_ids, dtype=np.int64), device=dev).reshape(1, -1)
    check_token_ids(idx, cfg)  # [1, T]
    n_tokens = idx.shape[1]
    top_k = max(1, min(top_k, cfg.vocab_size))
    tracked = _tracked_ids(options.track_token_ids, n_tokens, dev)
    if backward is not None:
        _check_target(backward[0], n_tokens, cfg.vocab_size)

    was_training = model.training
    params = list(model.parameters())
    rng = contextlib.nullcontext()
    if train:  # seeding dropout must not disturb the caller's random state
        rng = torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else [])
    try:
        with rng, hooks() as hook_set:
            if train and seed is not None:
                torch.manual_seed(seed)
            if model.training != train:  # train() walks every module: skip it when it is a no-op
                model.train(train)
            install_interventions(hook_set, model, interventions)
            recorder = _Recorder(hook_set, model, backward is not None, options.should_stop)
            if backward is None:
                with torch.inference_mode():
                    logits = model(idx)[0]  # [T, vocab]
                    outputs = summarize_logits(logits, idx[0], top_k, tracked)
                info = None
            else:
                for p in params:
                    p.grad = None
                param_grad_norms = recorder.watch_param_grads(params)
                with torch.enable_grad():
                    logits_batch = model(idx)  # [1, T, vocab]
                    logits = logits_batch[0]  # [T, vocab]
                    recorder.watch_grad("logits", logits_batch)
                    loss = _loss(logits, idx[0], backward[0])
                    loss.backward()
                with torch.no_grad():
                    outputs = summarize_logits(logits.detach(), idx[0], top_k, tracked)
                    info = _backward_info(
                        model, params, param_grad_norms, recorder, loss, idx, backward
                    )
            arrays = {key: _stored(key, t) for key, t in recorder.outputs.items()}
            arrays.update({k: _numpy(v) for k, v in outputs.items()})
            arrays["tokens/ids"] = idx[0].cpu().numpy()
            if info is not None:
                arrays.update(_grad_arrays(recorder.grads))
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
    )


def _tracked_ids(track_token_ids, n_tokens, dev) -> Tensor | None:
    if track_token_ids is None:
        return None
    tracked = torch.tensor(np.asarray(track_token_ids, dtype=np.int64), device=dev)
    if tracked.shape != (n_tokens,):
        raise ValueError(
            f"track_token_ids needs one id per position ({n_tokens}), got {tuple(tracked.shape)}"
        )
    return tracked


def _check_target(target, n_tokens: int, vocab_size: int) -> None:
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


def _loss(logits: Tensor, ids: Tensor, target) -> Tensor:
    if target is None:  # mean next-token cross-entropy: position t predicts token t + 1
        return F.cross_entropy(logits[:-1], ids[1:])
    position, token_id = target
    return -torch.log_softmax(logits[position], dim=-1)[token_id]  # -log p(token | <= position)


def _backward_info(model, params, param_grad_norms, recorder: _Recorder, loss, idx, backward):
    target, sgd_lr = backward
    names = [name for name, _ in model.named_parameters()]
    zero = torch.zeros((), device=idx.device)
    # A parameter that backward never reached (in a skipped block) has no gradient.
    grad_norms = torch.stack([zero if n is None else n for n in param_grad_norms]).tolist()
    weight_norms = _weight_norms(model, params)
    order_norms = torch.stack([n for _, n in recorder.order]).tolist() if recorder.order else []
    loss_after = None
    if sgd_lr is not None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        # The interventions stay on for the second forward; the recording pauses.
        recorder.paused = True
        loss_after = _loss_after_sgd(model, params, grads, sgd_lr, idx, target)
    return BackwardInfo(
        loss=float(loss.detach()),
        target=tuple(int(v) for v in target) if target is not None else None,
        order=tuple((key, n) for (key, _), n in zip(recorder.order, order_norms, strict=True)),
        params=tuple(
            ParamGrad(n, g, w) for n, g, w in zip(names, grad_norms, weight_norms, strict=True)
        ),
        sgd_lr=sgd_lr,
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


def _loss_after_sgd(model, params, grads, lr, idx, target) -> float:
    """One SGD step, the loss with the stepped weights, then the weights put back exactly
    (from a copy, since p - lr*g + lr*g need not round back to p)."""
    saved = [p.detach().clone() for p in params]
    try:
        torch._foreach_add_([p.detach() for p in params], grads, alpha=-lr)
        with torch.no_grad():
            return float(_loss(model(idx)[0], idx[0], target))
    finally:
        for p, original in zip(params, saved, strict=True):
            p.detach().copy_(original)


def _pick(key: str, tensor: Tensor) -> Tensor:
    """Drop the batch dimension (and the kept size-1 dimension of LayerNorm statistics)."""
    if key == "embeddings/position":
        return tensor  # [T, emb]: computed without a batch dimension
    if key.endswith(("/mean", "/var")):
        return tensor[0, :, 0]  # [B, T, 1] -> [T]
    return tensor[0]


def _stored(key: str, value: Tensor | dict[str, Tensor]) -> np.ndarray | PackedCausal:
    """What the Trace keeps for one stage: attention weights packed, the rest as arrays."""
    if isinstance(value, dict):  # packed by the forward hook
        return PackedCausal.from_parts(value)
    if key.endswith("/attn/weights"):
        return PackedCausal.from_parts(pack_causal(value[0]))
    return _numpy(_pick(key, value))


def _numpy(tensor: Tensor) -> np.ndarray:
    """float32 (or int64 ids) on the CPU; no copy when the tensor is already there."""
    tensor = tensor.detach()
    if tensor.is_floating_point():
        tensor = tensor.float()
    return tensor.cpu().numpy()


def _grad_arrays(grads: dict[str, Tensor]) -> dict[str, np.ndarray]:
    arrays = {}
    for key, grad in grads.items():
        if key == "logits":
            arrays["grad/logits/last"] = _numpy(grad)  # [vocab], the last position
        else:
            arrays["grad/" + key] = _numpy(_pick(key, grad))
    return arrays
