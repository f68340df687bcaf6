"""The sweeps of activation patching, as one table. A row names the sweep, the layout of its
array, what one cell patches, the activation it patches (by trace key), where the change
enters the residual stream, how it changes the stream, and the section of the stage view
that shows a cell. Exact patching, attribution patching, the Patching tab and the exported
files all read this table; a new sweep is one row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch

from ...model import GPTModel
from ...probe.stages import stage_key
from ._runs import RunCache, block_input_key, head_output

# The axes of a sweep's array, in order; a head-by-position sweep is drawn one row per head.
LAYER_POSITION = ("layer", "position")
LAYER_HEAD = ("layer", "head")
LAYER_HEAD_POSITION = ("layer", "head", "position")


@dataclass(frozen=True)
class Sweep:
    name: str
    layout: tuple[str, ...]  # the axes of its array, one of the layouts above
    patches: str  # what one cell patches, in words
    activation: Callable[[int], str]  # block -> trace key of the activation it patches
    start: str  # where the change enters the stream: "pre", "mid" or "post" the block
    change: Callable  # (model, sweep, layer, base, source) -> [T, E], or [H, T, E] per head
    section: str  # the stage-view section that shows what a cell patches

    def shape(self, n_layers: int, n_heads: int, n_tokens: int) -> tuple[int, ...]:
        sizes = {"layer": n_layers, "head": n_heads, "position": n_tokens}
        return tuple(sizes[axis] for axis in self.layout)


def _stream_change(model: GPTModel, sweep: Sweep, layer: int, base: RunCache, source: RunCache):
    """The activation's change, added to the stream as it is: [T, E]."""
    key = sweep.activation(layer)
    return source[key] - base[key]


def _head_change(model: GPTModel, sweep: Sweep, layer: int, base: RunCache, source: RunCache):
    """Each head's context-vector change through out_proj: [H, T, E]."""
    key = sweep.activation(layer)
    return head_output(model, layer, source[key] - base[key])


def _weights_change(model: GPTModel, sweep: Sweep, layer: int, base: RunCache, source: RunCache):
    """Each head with the source's weights over the base run's values: [H, T, E]. The
    source's weights are made here from its block input, one block at a time: kept for
    every block, they would be 12 x 48 MiB for gpt2-small at T = 1,024."""
    att, norm = model.trf_blocks[layer].att, model.trf_blocks[layer].norm1
    streams = torch.stack([base.block_input(layer), source.block_input(layer)])  # [2, T, E]
    queries, keys, values = att.project(norm(streams))  # [2, H, T, d_head] each
    weights = att.attention_weights(queries[1:], keys[1:])[0]  # [H, T, T]: the source's
    context = (weights @ values[0]).transpose(0, 1)  # [T, H, d_head]
    return head_output(model, layer, context - base.at("attn/context", layer))


SWEEPS: dict[str, Sweep] = {
    sweep.name: sweep
    for sweep in (
        Sweep(
            "resid",
            LAYER_POSITION,
            "the residual stream entering block l at position p",
            block_input_key,
            "pre",
            _stream_change,
            "ln1",
        ),
        Sweep(
            "attn",
            LAYER_POSITION,
            "block l's attention output (after out_proj) at position p",
            partial(stage_key, "attn/out"),
            "mid",
            _stream_change,
            "attention",
        ),
        Sweep(
            "mlp",
            LAYER_POSITION,
            "block l's feed-forward output at position p",
            partial(stage_key, "ff/out"),
            "post",
            _stream_change,
            "ff",
        ),
        Sweep(
            "heads",
            LAYER_HEAD,
            "head h's context vector at every position",
            partial(stage_key, "attn/context"),
            "mid",
            _head_change,
            "attention",
        ),
        Sweep(
            "heads_by_pos",
            LAYER_HEAD_POSITION,
            "head h's context vector at position p",
            partial(stage_key, "attn/context"),
            "mid",
            _head_change,
            "attention",
        ),
        Sweep(
            "pattern",
            LAYER_HEAD,
            "head h's attention weights at every position",
            partial(stage_key, "attn/weights"),
            "mid",
            _weights_change,
            "attention",
        ),
    )
}
# Path patching (into a receiver) is laid out like the heads sweep, one cell per sender head,
# but patches only that head's path into the receiver.
PATH_SWEEP = replace(
    SWEEPS["heads"],
    name="path",
    patches="head h's context vector on its way into the receiver only (every other route clean)",
)
