"""Where an SAE reads: TransformerLens hook names, as SAE configs write them, mapped onto the
stage registry in one table.

`blocks.L.hook_resid_pre` is block L's input: the embeddings' sum for block 0, block L-1's
output after it. `attn.hook_z` is the heads' context vectors [T, H, d_head], which an SAE
reads flattened to [T, H·d_head] (head h owns features h·d_head .. (h+1)·d_head - 1, as
the attention's split into heads has it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from ..errors import SAEError
from ..model.config import GPTConfig
from ..probe.hook_points import Edit
from ..probe.stage_spec import TOKENS_HEADS_DIMS
from ..probe.stages import STAGES, stage_key

# TransformerLens's name within block L -> the stage (registry name) that holds it.
HOOK_STAGES = {
    "hook_resid_pre": "out",  # of block L - 1; block 0's is "embeddings/sum" (site_of)
    "hook_resid_mid": "resid_mid",
    "hook_resid_post": "out",
    "hook_attn_out": "attn/out",
    "hook_mlp_out": "ff/out",
    "attn.hook_z": "attn/context",
}
_EMBEDDINGS = "embeddings/sum"
_HOOK_NAME = re.compile(r"^blocks\.(\d+)\.(.+)$")


@dataclass(frozen=True)
class Site:
    hook_name: str  # "blocks.8.hook_resid_pre"
    layer: int  # the L of blocks.L: the block the hook name belongs to
    key: str  # trace key of the stage it reads ("blocks/7/out"; "embeddings/sum")
    width: int  # features of the activation, once flattened (d_in must equal it)
    heads: bool  # an [.., H, d_head] stage, read flattened to H·d_head

    def edit(self, change: Callable[[Tensor], Tensor]) -> Edit:
        """A hooked()/capture() edit of this stage that hands `change` the activation as
        the SAE reads it ([B, T, width]) and carries on with what it returns."""
        if not self.heads:
            return change

        def flattened(output: Tensor) -> Tensor:  # output: [B, T, H, d_head]
            heads = output.shape[-2:]
            return change(output.flatten(-2)).unflatten(-1, heads)  # the rows may grow

        return flattened


def site_of(hook_name: str, cfg: GPTConfig) -> Site:
    """The site of a TransformerLens hook name in a model of this config; SAEError for a
    name this table lacks or a block the model does not have."""
    match = _HOOK_NAME.match(hook_name)
    names = ", ".join(f"blocks.L.{name}" for name in HOOK_STAGES)
    if match is None or match.group(2) not in HOOK_STAGES:
        raise SAEError(f"the SAE reads {hook_name!r}; the activations supported are {names}")
    layer, hook = int(match.group(1)), match.group(2)
    if layer >= cfg.n_layers:
        raise SAEError(
            f"the SAE reads {hook_name}, but this model has {cfg.n_layers} blocks "
            f"(blocks.0 to blocks.{cfg.n_layers - 1})"
        )
    if hook == "hook_resid_pre":
        key = stage_key(_EMBEDDINGS) if layer == 0 else stage_key("out", layer - 1)
    else:
        key = stage_key(HOOK_STAGES[hook], layer)
    heads = STAGES[HOOK_STAGES[hook]].layout == TOKENS_HEADS_DIMS
    width = cfg.n_heads * cfg.head_dim if heads else cfg.emb_dim
    return Site(hook_name, layer, key, width, heads)
