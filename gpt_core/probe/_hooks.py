"""The hooks a run installs: interventions, the recorder of every stage, the cancel check.

Every hook lives inside `hooks()`, which removes them all in `finally`: after any run, one
that raised included, the model has no hooks left.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..errors import Cancelled
from ..model import GPTModel
from ._causal_pack import pack_causal, packed_norm
from .interventions import Interventions
from .stage_spec import CAUSAL_HEADS, TOP_IDS
from .stages import LOGITS, module_path, stage_key, stage_specs

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


def install_stop_check(hook_set: HookSet, model: GPTModel, should_stop: StopCheck) -> None:
    """Poll `should_stop` before each block; raise Cancelled when it says so."""

    def stop_if_asked(module, args):
        if should_stop():
            raise Cancelled("run cancelled")

    for block in model.trf_blocks:
        hook_set.forward_pre(block, stop_if_asked)


class Recorder:
    """Forward hooks that keep each stage's output, and with gradients on, tensor hooks
    that keep each stage's gradient and note the order in which backward reached it."""

    def __init__(self, hook_set: HookSet, model: GPTModel, with_grads: bool):
        self.hook_set = hook_set
        self.with_grads = with_grads
        self.paused = False  # while True, forwards run through the hooks unrecorded
        self.outputs: dict[str, Tensor | dict[str, Tensor]] = {}
        self.grads: dict[str, Tensor | dict[str, Tensor]] = {}
        self.order: list[tuple[str, Tensor]] = []  # (key, gradient norm as a 0-d tensor)
        for key, layout, module in _stage_modules(model):
            hook_set.forward(module, self._keeper(key, layout))

    def _keeper(self, key: str, layout: str):
        packs = layout == CAUSAL_HEADS

        def hook(module, args, output: Tensor) -> None:
            if self.paused:
                return
            if self.with_grads and output.requires_grad:
                self.outputs[key] = output
                self.watch_grad(key, output, packs)
            else:  # pack now, so the dense [B, H, T, T] weights are freed after the block
                self.outputs[key] = pack_causal(output[0]) if packs else output

        return hook

    def watch_grad(self, key: str, tensor: Tensor, packs: bool = False) -> None:
        """packs: causal attention weights [1, H, T, T], whose gradient and output are
        packed as soon as the gradient arrives, so that neither stays dense."""

        def on_grad(grad: Tensor) -> None:
            if packs:
                self.grads[key] = pack_causal(grad[0])
                self.outputs[key] = pack_causal(self.outputs[key][0].detach())
                self.order.append((key, packed_norm(self.grads[key])))
                return
            # Of the [1, T, vocab] logits gradient only the last position is kept.
            self.grads[key] = grad[0, -1].clone() if key == LOGITS else grad
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


def _stage_modules(model: GPTModel) -> list[tuple[str, str, nn.Module]]:
    """(trace key, layout, module that produces it) for every hooked stage; found once per
    model."""
    if model not in _STAGE_MODULES:
        modules = dict(model.named_modules())
        _STAGE_MODULES[model] = [
            (stage_key(spec.name, layer), spec.layout, modules[module_path(spec, layer)])
            for spec, layer in stage_specs(model.cfg)
            # top ids: summarised from the model's return value; derived: computed on access;
            # dropout masks: recorded by _dropout.py, in training mode only
            if spec.layout != TOP_IDS and not spec.derived and not spec.is_dropout_mask
        ]
    return _STAGE_MODULES[model]
