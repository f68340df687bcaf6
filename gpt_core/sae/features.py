"""features(): run the model on a prompt with an SAE at its site, in one batched forward.

The rows of the batch differ only at the site (everything before it is the same), so one
forward gives them all, run as one row up to the site and as the rows from there:
- the run: the site as the model computes it, with the feature switches applied;
- spliced: the SAE's reconstruction decode(f') in place of the activation, every position;
- zero: the site zeroed;
- clean (only with feature switches): the site untouched, for loss_clean.
Head and block switches (Interventions) act on every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..model import GPTModel, check_token_ids
from ..probe.hook_points import hooked
from ..probe.interventions import Interventions
from .autoencoder import SparseAutoencoder
from .readout import DEFAULT_TOP, FeatureReadout, make_readout
from .sites import site_of
from .switches import FeatureSwitches


@dataclass(frozen=True)
class SpliceLosses:
    """Mean next-token cross-entropy over the prompt (NaN for a one-token prompt)."""

    clean: float  # the site untouched (head/block switches included, feature switches not)
    spliced: float  # the SAE's reconstruction in place of the site
    zero: float  # the site zeroed
    changed: float | None = None  # with the feature switches; None when there are none

    @property
    def recovered(self) -> float:
        """(zero − spliced) / (zero − clean): 1 when splicing costs nothing, 0 when it is
        as bad as zeroing the site."""
        gap = self.zero - self.clean
        return (self.zero - self.spliced) / gap if gap else float("nan")


@dataclass(frozen=True, eq=False)
class FeatureRun:
    readout: FeatureReadout  # the features at the site (switched, with switches)
    site_key: str  # trace key of the stage the SAE reads
    top1_ids: np.ndarray  # int64 [T]: the run's most likely next token at each position
    losses: SpliceLosses | None  # None when asked for no losses


def features(
    model: GPTModel,
    ids: Sequence[int] | Tensor,
    sae: SparseAutoencoder,
    *,
    top_k: int = DEFAULT_TOP,
    interventions: Interventions | None = None,
    switches: FeatureSwitches | None = None,
    losses: bool = True,
) -> FeatureRun:
    """The SAE's features of the prompt `ids` at its site, the run's top-1 predictions,
    and (losses=True) the losses clean / spliced / zeroed / switched."""
    switches = switches or FeatureSwitches()
    switches.check(sae.d_sae)
    site = site_of(sae.hook_name, model.cfg)
    device = next(model.parameters()).device
    sae = sae.to(device)
    idx = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=device).reshape(1, -1)
    check_token_ids(idx, model.cfg)  # [1, T]
    rows = 1 if not losses else (3 if switches.is_empty else 4)
    seen: dict[str, Tensor] = {}

    def at_site(x: Tensor) -> Tensor:  # x: [1, T, d_in] -> [rows, T, d_in]
        x0 = x[0]
        acts = sae.encode(x0)  # [T, d_sae]
        x_hat = sae.decode_sparse(acts)  # [T, d_in]
        delta = switches.delta(sae, acts) if not switches.is_empty else 0.0
        seen.update(x=x0, x_hat=x_hat, acts=acts)
        if rows == 1 and switches.is_empty:
            return x  # read only
        replaced = [x0 + delta, x_hat + delta, torch.zeros_like(x0), x0][:rows]
        return torch.stack(replaced)

    was_training = model.training
    try:
        model.eval()
        with (
            torch.inference_mode(),
            hooked(model, interventions, edits={site.key: site.edit(at_site)}),
        ):
            # one row up to the site, where the rows part (the blocks before it are the same)
            logits = model(idx)  # [rows, T, vocab]
            # a site inside a skipped block is computed and dropped: every row is the run
            logits = logits.expand(rows, -1, -1)
            acts = switches.switched(seen["acts"])
            readout = make_readout(sae, seen["x"], seen["x_hat"], acts, top_k, switches)
            top1 = logits[0].argmax(-1).cpu().numpy()
            spliced = _losses(_mean_losses(logits, idx[0]).tolist(), switches) if losses else None
    finally:
        model.train(was_training)
    return FeatureRun(readout, site.key, top1, spliced)


def _mean_losses(logits: Tensor, ids: Tensor) -> Tensor:
    """Each row's mean next-token cross-entropy ([rows]); NaN for a one-token prompt."""
    rows, n, vocab = logits.shape
    if n < 2:
        return torch.full((rows,), float("nan"))
    targets = ids[1:].expand(rows, -1).reshape(-1)  # [rows · (T - 1)]
    per_token = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), targets, reduction="none")
    return per_token.view(rows, n - 1).mean(1)


def _losses(per_row: list[float], switches: FeatureSwitches) -> SpliceLosses:
    if switches.is_empty:
        run, spliced, zero = per_row
        return SpliceLosses(run, spliced, zero)
    run, spliced, zero, clean = per_row
    return SpliceLosses(clean, spliced, zero, changed=run)
