"""A sparse autoencoder: encode an activation into features, decode features back.

    x_in = x - b_dec                       (when apply_b_dec_to_input; else x_in = x)
    pre  = x_in @ W_enc + b_enc            [.., d_sae]
    f    = ReLU(pre)                       standard
         = ReLU(pre) · [pre > threshold]   JumpReLU (strictly greater, as SAELens)
         = ReLU of the k largest of pre, 0 elsewhere      TopK
    x̂    = f @ W_dec + b_dec               [.., d_in]

An SAE trained with normalize_activations = "expected_average_only_in" saw its inputs
multiplied by a constant s; as SAELens does, s is folded into the weights at load
(W_enc·s, W_dec/s, b_dec/s), after which the formulas above read unscaled activations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ..errors import SAEError
from .config import SAEConfig


@dataclass(frozen=True, eq=False)
class SparseAutoencoder:
    cfg: SAEConfig  # what its cfg.json says (normalisation as written there)
    W_enc: Tensor  # [d_in, d_sae]
    b_enc: Tensor  # [d_sae]
    W_dec: Tensor  # [d_sae, d_in]: row f is feature f's direction
    b_dec: Tensor  # [d_in]
    threshold: Tensor | None = None  # [d_sae], JumpReLU only
    source: str = ""  # where it was loaded from, for labels
    norm_scaling_factor: float | None = None  # s, already folded into the weights
    warnings: tuple[str, ...] = ()  # things to tell a person (a model_name not GPT-2)

    @property
    def hook_name(self) -> str:
        return self.cfg.hook_name

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    @property
    def architecture(self) -> str:
        return self.cfg.architecture

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    def to(self, device: str | torch.device) -> SparseAutoencoder:
        """This SAE with its tensors on `device` (itself when they are there already)."""
        device = torch.device(device)
        if self.W_enc.device == device:
            return self
        moved = {
            name: None if t is None else t.to(device)
            for name, t in self._tensors().items()
        }  # fmt: skip
        return replace(self, **moved)

    def pre_activations(self, x: Tensor) -> Tensor:  # x: [.., d_in] -> [.., d_sae]
        x_in = x - self.b_dec if self.cfg.apply_b_dec_to_input else x
        return torch.matmul(x_in, self.W_enc).add_(self.b_enc)

    def encode(self, x: Tensor) -> Tensor:  # x: [.., d_in] -> features [.., d_sae]
        pre = self.pre_activations(x)
        if self.architecture == "jumprelu":  # relu(pre) where pre > threshold, else 0
            return pre.masked_fill_(pre <= self.threshold, 0.0).relu_()
        if self.architecture == "topk":
            top = pre.topk(self.cfg.k, dim=-1)  # values, indices: [.., k]
            return torch.zeros_like(pre).scatter_(-1, top.indices, torch.relu(top.values))
        return torch.relu(pre)

    def decode(self, acts: Tensor) -> Tensor:  # acts: [.., d_sae] -> x̂ [.., d_in]
        return acts @ self.W_dec + self.b_dec

    def decode_sparse(self, acts: Tensor) -> Tensor:
        """decode(), reading only the rows of W_dec of features active somewhere in `acts`:
        the same numbers (up to summation order) at a fraction of the cost when few are."""
        active = (acts != 0).flatten(0, -2).any(dim=0).nonzero()[:, 0]  # [n_active]
        if 2 * len(active) >= self.d_sae:
            return self.decode(acts)
        return acts[..., active] @ self.W_dec[active] + self.b_dec

    def check_feature(self, feature: int) -> int:
        if not 0 <= feature < self.d_sae:
            raise SAEError(f"feature {feature} does not exist: features 0..{self.d_sae - 1:,}")
        return feature

    def _tensors(self) -> dict[str, Tensor | None]:
        return {
            "W_enc": self.W_enc,
            "b_enc": self.b_enc,
            "W_dec": self.W_dec,
            "b_dec": self.b_dec,
            "threshold": self.threshold,
        }


def fold_norm_scaling(tensors: dict[str, Tensor], factor: float) -> dict[str, Tensor]:
    """The weights with the input scaling s folded in, as SAELens's
    fold_activation_norm_scaling_factor: W_enc·s, W_dec/s, b_dec/s (b_enc and the
    threshold act after the encoder and keep their values)."""
    folded = dict(tensors)
    folded["W_enc"] = tensors["W_enc"] * factor
    folded["W_dec"] = tensors["W_dec"] / factor
    folded["b_dec"] = tensors["b_dec"] / factor
    return folded
