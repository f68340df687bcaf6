"""The logit lens: what each layer's residual stream would predict if it went straight
to the output, through final_norm and out_head."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model import GPTModel
from ..probe import Trace, stage_key


@dataclass(frozen=True)
class LogitLens:
    position: int  # the token position read
    labels: tuple[str, ...]  # "embeddings", "block 0", ..., one per row
    topk_ids: np.ndarray  # [n_layers + 1, k] most likely next tokens per layer
    topk_probs: np.ndarray  # [n_layers + 1, k] their probabilities
    logits: np.ndarray  # [vocab] the last row's logits: the run's own logits at `position`


@torch.inference_mode()
def logit_lens(model: GPTModel, trace: Trace, position: int, k: int = 5) -> LogitLens:
    """Read the residual stream at `position` after the embeddings and after every block."""
    n_layers = model.cfg.n_layers
    keys = [stage_key("embeddings/sum")] + [stage_key("out", i) for i in range(n_layers)]
    device = next(model.parameters()).device
    resid = torch.tensor(np.stack([trace[key][position] for key in keys]), device=device)
    logits = model.out_head(model.final_norm(resid[None]))[0].float()  # [L + 1, vocab]
    top = torch.topk(torch.softmax(logits, dim=-1), k, dim=-1)
    labels = ("embeddings",) + tuple(f"block {i}" for i in range(n_layers))
    ids, probs = top.indices.cpu().numpy(), top.values.cpu().numpy()
    return LogitLens(position, labels, ids, probs, logits[-1].cpu().numpy())
