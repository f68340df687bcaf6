"""Training mode's dropout: the seeded random state of one run, and the masks its dropout
modules drew.

A dropout module draws its mask inside its forward and keeps nothing, and the mask cannot be
read back from the output where an input entry was already 0. So each mask is recorded by
replaying the draw: a pre-hook notes the random state the module starts from, and the hook
after it draws again from that state on a tensor of ones, the same shape, device and dtype,
through the same function (F.dropout). That gives exactly the multiplier the module applied
(0 where dropped, 1/(1 - p) where kept); the random state then moves on as if the replay had
not happened, so the masks a run draws are those of a run without the recording.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model import GPTModel
from ._hooks import Recorder
from .stages import module_path, stage_key, stage_specs


@contextlib.contextmanager
def seeded_dropout(train: bool, seed: int, device: torch.device) -> Iterator[None]:
    """In training mode: the random state seeded with `seed` for the run, and the caller's
    random state (the CPU's, and the device's on CUDA) put back afterwards, whatever
    happened. In evaluation mode nothing draws, and nothing is touched."""
    if not train:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def record_dropout_masks(recorder: Recorder, model: GPTModel) -> None:
    """Hooks that keep each dropout site's mask in recorder.outputs under its stage key, while
    the recorder is not paused and the module is in training mode."""
    for module, keys in _dropout_sites(model).items():
        _watch(recorder, module, keys)


def _watch(recorder: Recorder, module: nn.Dropout, keys: list[str]) -> None:
    started_from: list[Tensor] = []  # the random state before the module's current call

    def before(module: nn.Dropout, args) -> None:
        if module.training and not recorder.paused:
            started_from[:] = [_random_state(args[0].device)]

    def after(module: nn.Dropout, args, output: Tensor) -> None:
        if not started_from:
            return
        device = args[0].device
        moved_on = _random_state(device)
        _set_random_state(device, started_from.pop())
        with torch.no_grad():
            mask = F.dropout(torch.ones_like(args[0]), module.p, training=True)
        _set_random_state(device, moved_on)
        # The call's place within the block: drop_shortcut is called twice per forward.
        key = next(key for key in keys if key not in recorder.outputs)
        recorder.outputs[key] = mask

    recorder.hook_set.forward_pre(module, before)
    recorder.hook_set.forward(module, after)


def _dropout_sites(model: GPTModel) -> dict[nn.Module, list[str]]:
    """Each dropout module and the stage keys of its calls in order."""
    modules = dict(model.named_modules())
    sites: dict[nn.Module, list[str]] = {}
    for spec, layer in stage_specs(model.cfg):
        if spec.is_dropout_mask:
            keys = sites.setdefault(modules[module_path(spec, layer)], [])
            keys.insert(spec.dropout_call, stage_key(spec.name, layer))
    return sites


def _random_state(device: torch.device) -> Tensor:
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device)
    return torch.get_rng_state()


def _set_random_state(device: torch.device, state: Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)
