"""What an SAE reads from one activation: each token's top features, how many are active
(L0), how well the reconstruction matches, and every active feature kept sparsely.

read_features() needs only the site's activation, so a Trace that already holds the stage
(trace[site.key]) gives features with no run of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .autoencoder import SparseAutoencoder
from .switches import FeatureSwitches

DEFAULT_TOP = 20  # features listed per token


@dataclass(frozen=True, eq=False)
class FeatureReadout:
    hook_name: str  # the SAE's site, as TransformerLens names it
    top_ids: np.ndarray  # int64 [T, K]: each token's K most active features, descending
    top_acts: np.ndarray  # float32 [T, K]: their activations
    l0: np.ndarray  # int64 [T]: features active (non-zero) at each token
    recon_error: np.ndarray  # float32 [T]: ‖x − x̂‖² / d_in
    recon_fraction: np.ndarray  # float32 [T]: ‖x − x̂‖² / ‖x − x̄‖², x̄ the prompt's mean x
    explained_variance: float  # 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖² over the prompt
    # Every non-zero activation, row by row (CSR): token t's are [ptr[t], ptr[t + 1]).
    active_ptr: np.ndarray  # int64 [T + 1]
    active_ids: np.ndarray  # int64 [n]: feature ids, ascending within a token
    active_acts: np.ndarray  # float32 [n]
    switches: FeatureSwitches  # the switches the activations include

    @property
    def n_tokens(self) -> int:
        return len(self.l0)

    def feature_acts(self, feature: int) -> np.ndarray:
        """float32 [T]: feature's activation at every token (0 where inactive)."""
        acts = np.zeros(self.n_tokens, dtype=np.float32)
        hits = np.flatnonzero(self.active_ids == feature)
        rows = np.searchsorted(self.active_ptr, hits, side="right") - 1
        acts[rows] = self.active_acts[hits]
        return acts

    def density(self, feature: int) -> float:
        """The share of the prompt's tokens at which the feature is active."""
        return float(np.count_nonzero(self.active_ids == feature)) / max(self.n_tokens, 1)


def read_features(
    sae: SparseAutoencoder,
    x: Tensor | np.ndarray,
    *,
    top_k: int = DEFAULT_TOP,
    switches: FeatureSwitches | None = None,
) -> FeatureReadout:
    """The SAE's reading of activation x [T, d_in] (the site's stage as a trace holds it;
    [T, H, d_head] is read flattened). With switches, the activations are the switched
    features f' (ablated at 0, steered + α); the reconstruction error is the same with or
    without them (switches.py)."""
    switches = switches or FeatureSwitches()
    switches.check(sae.d_sae)
    if not isinstance(x, Tensor):  # copied: a trace's arrays are read-only
        x = torch.from_numpy(np.array(x, dtype=np.float32))
    x = x.to(sae.device, torch.float32)
    x = x.reshape(len(x), -1)  # [T, d_in]; a heads stage [T, H, d_head] flattened
    with torch.inference_mode():
        acts = sae.encode(x)  # [T, d_sae]
        x_hat = sae.decode_sparse(acts)  # [T, d_in]
        return make_readout(sae, x, x_hat, switches.switched(acts), top_k, switches)


def make_readout(
    sae: SparseAutoencoder,
    x: Tensor,
    x_hat: Tensor,
    acts: Tensor,
    top_k: int,
    switches: FeatureSwitches,
) -> FeatureReadout:
    """The readout of x [T, d_in] from its reconstruction x_hat and (switched) features."""
    k = max(1, min(top_k, sae.d_sae))
    top = acts.topk(k, dim=-1)  # [T, k], descending
    err = (x - x_hat).square().sum(-1)  # [T]
    spread = (x - x.mean(0)).square().sum(-1)  # [T]
    nonzero = acts.nonzero()  # [n, 2]: (token, feature), row-major
    ptr = torch.zeros(len(x) + 1, dtype=torch.int64, device=acts.device)
    ptr[1:] = torch.bincount(nonzero[:, 0], minlength=len(x)).cumsum(0)
    total = float(spread.sum())
    return FeatureReadout(
        hook_name=sae.hook_name,
        top_ids=_np(top.indices),
        top_acts=_np(top.values),
        l0=_np(ptr.diff()),
        recon_error=_np(err / sae.d_in),
        recon_fraction=_np(torch.where(spread > 0, err / spread, torch.nan)),
        explained_variance=1.0 - float(err.sum()) / total if total > 0 else float("nan"),
        active_ptr=_np(ptr),
        active_ids=_np(nonzero[:, 1]),
        active_acts=_np(acts[nonzero[:, 0], nonzero[:, 1]]),
        switches=switches,
    )


def _np(tensor: Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.is_floating_point() else tensor.long()).numpy()
