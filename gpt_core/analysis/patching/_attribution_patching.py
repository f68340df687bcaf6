"""Attribution patching, the fast estimate beside exact patching: the change a patch makes
to the metric is, to first order, (source activation − base activation) · ∂metric/∂activation
on the base run. One forward and backward of the base run gives every cell of every sweep.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...probe.stage_spec import CAUSAL_HEADS, TOKENS_DIMS, TOKENS_HEADS_DIMS
from ...probe.stages import parse_key
from ._runs import RunCache
from .sweeps import Sweep

# The axes of a stage's array, by its registry layout ("key": the position attended to).
_AXES = {
    TOKENS_DIMS: ("position", "dim"),
    TOKENS_HEADS_DIMS: ("position", "head", "dim"),
    CAUSAL_HEADS: ("head", "position", "key"),
}


def attribution_estimate(sweep: Sweep, base: RunCache, source: RunCache) -> Tensor:
    """First-order change of the metric for every cell of `sweep`, all blocks."""
    return torch.stack(
        [_block_estimate(sweep, layer, base, source) for layer in range(base.n_layers)]
    )


def _block_estimate(sweep: Sweep, layer: int, base: RunCache, source: RunCache) -> Tensor:
    """The change times the gradient, summed over every axis a cell covers whole."""
    key = sweep.activation(layer)
    axes = list(_AXES[parse_key(key)[0].layout])
    per = (source[key] - base[key]) * base.grads[key]
    if axes[-1] == "dim":  # the width first: what a head or a position adds
        per, axes = per.sum(-1), axes[:-1]
    covered = tuple(i for i, axis in enumerate(axes) if axis not in sweep.layout)
    if covered:
        per = per.sum(covered)
        axes = [axis for axis in axes if axis in sweep.layout]
    return per.permute([axes.index(axis) for axis in sweep.layout[1:]])
