"""Hooks on chosen stages, named by their trace keys: the probe's seam for analysis code,
which keeps or edits stages without writing hooks on module paths itself (TransformerLens's
run_with_cache with a names filter, and its run_with_hooks).

Every hook lives inside `hooked()`, which removes them all in `finally`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping

from torch import Tensor, nn

from ..model import GPTModel
from ._hooks import HookSet, hooks, install_interventions
from .interventions import Interventions
from .stages import module_path, parse_key

Edit = Callable[[Tensor], Tensor]  # a stage's output -> what the model carries on with


def stage_module(model: GPTModel, key: str) -> nn.Module:
    """The module whose forward output is stage `key` ("blocks/3/attn/context")."""
    spec, layer = parse_key(key)
    if spec.derived:  # no module outputs it: it is recomputed from other stages when read
        raise ValueError(f"{key} is derived from {', '.join(spec.derived_from)}: hook those")
    return model.get_submodule(module_path(spec, layer))


def install_edits(hook_set: HookSet, model: GPTModel, edits: Mapping[str, Edit]) -> None:
    """Hooks that replace each stage in `edits` by its edit of the stage's output."""
    for key, edit in edits.items():
        hook_set.forward(stage_module(model, key), lambda m, args, out, edit=edit: edit(out))


@contextlib.contextmanager
def hooked(
    model: GPTModel,
    interventions: Interventions | None = None,
    *,
    edits: Mapping[str, Edit] | None = None,
    keep: Iterable[str] = (),
) -> Iterator[dict[str, Tensor]]:
    """Forward passes inside run with the interventions, with each stage in `edits` replaced
    by its edit of the output, and keep the output of each stage in `keep` (after any edit,
    batch dimension and autograd graph included) in the dict yielded, by trace key."""
    kept: dict[str, Tensor] = {}

    def keeper(key: str):
        def hook(module, args, output: Tensor) -> None:
            kept[key] = output

        return hook

    with hooks() as hook_set:
        if interventions is not None:
            install_interventions(hook_set, model, interventions)
        install_edits(hook_set, model, edits or {})
        for key in keep:  # after the edits: a kept stage is what the model carries on with
            hook_set.forward(stage_module(model, key), keeper(key))
        yield kept
