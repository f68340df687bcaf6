"""A feature's card: what it writes (the tokens its decoder direction pushes up and down
through the output head, as feature dashboards show them) and where it fires on a prompt.

The direction W_dec[f] lives at the SAE's site; an attention-head site (hook_z) writes into
the residual stream through out_proj first (W_dec[f] @ W_Oᵀ, no bias). Then
W_dec[f] @ W_out_headᵀ gives one number per vocabulary token (no final LayerNorm, as the
dashboards compute it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..model import GPTModel, get_tokenizer
from .autoencoder import SparseAutoencoder
from .readout import FeatureReadout
from .sites import site_of

LOGIT_TOKENS = 10  # tokens listed each way


@dataclass(frozen=True)
class FeatureCard:
    feature: int
    logits_up: tuple[tuple[int, str, float], ...]  # (token id, token, value), largest first
    logits_down: tuple[tuple[int, str, float], ...]  # (token id, token, value), smallest first
    acts: np.ndarray | None  # float32 [T]: its activation at each token of the prompt
    density: float | None  # the share of the prompt's tokens where it is active

    def to_dict(self) -> dict:
        """feature_F.json's contents."""
        data = {
            "feature": self.feature,
            "logits_up": [list(row) for row in self.logits_up],
            "logits_down": [list(row) for row in self.logits_down],
        }
        if self.acts is not None:
            data["acts"] = self.acts.tolist()
            data["density"] = self.density
        return data


def residual_direction(model: GPTModel, sae: SparseAutoencoder, feature: int) -> Tensor:
    """Feature f's decoder direction as written into the residual stream ([emb_dim])."""
    sae.check_feature(feature)
    site = site_of(sae.hook_name, model.cfg)
    direction = sae.W_dec[feature]  # [d_in]
    if site.heads:  # the heads' context vectors reach the stream through out_proj
        out_proj = model.trf_blocks[site.layer].att.out_proj.weight  # [emb, H·d_head]
        direction = direction.to(out_proj.device) @ out_proj.T
    return direction


def logit_effect(model: GPTModel, sae: SparseAutoencoder, feature: int) -> Tensor:
    """W_dec[f] @ W_out_headᵀ: [vocab]."""
    with torch.inference_mode():
        head = model.out_head.weight  # [vocab, emb]
        return residual_direction(model, sae, feature).to(head.device) @ head.T


def feature_card(
    model: GPTModel,
    sae: SparseAutoencoder,
    feature: int,
    readout: FeatureReadout | None = None,
    n_tokens: int = LOGIT_TOKENS,
) -> FeatureCard:
    """Feature f's card; its activations and density on the prompt come from `readout`."""
    effect = logit_effect(model, sae, feature).float().cpu()  # [vocab]
    n = min(n_tokens, len(effect))
    up = effect.topk(n)
    down = (-effect).topk(n)
    displays = get_tokenizer().displays

    def rows(ids: Tensor, values: Tensor) -> tuple[tuple[int, str, float], ...]:
        ids_list = ids.tolist()
        return tuple(zip(ids_list, displays(ids_list), values.tolist(), strict=True))

    acts = None if readout is None else readout.feature_acts(feature)
    density = None if readout is None else readout.density(feature)
    return FeatureCard(feature, rows(up.indices, up.values), rows(down.indices, -down.values),
                       acts, density)  # fmt: skip
