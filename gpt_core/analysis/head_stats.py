"""One number per attention head, for the layers x heads overview: how spread out a
head's attention is and where it tends to look."""

from __future__ import annotations

import numpy as np

from ..probe import Trace, stage_key

HEAD_METRICS = {
    # "Name: what it is"; the name before the colon is what menus show
    "entropy": "Entropy: spread of each query's attention in nats, averaged over queries",
    "previous": "Previous token: weight on the previous token, averaged over queries",
    "first": "First token: weight on the first token, averaged over queries",
    "self": "Own token: weight on the query's own token, averaged over queries",
}


def head_metrics(weights: np.ndarray) -> dict[str, np.ndarray]:
    """weights [H, T, T] -> each metric per head [H]."""
    weights = weights.astype(np.float64)
    T = weights.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(weights > 0, weights * np.log(weights), 0.0)
    entropy = -plogp.sum(-1).mean(-1)
    diag = np.diagonal(weights, axis1=1, axis2=2)  # [H, T]
    previous = (
        np.diagonal(weights, offset=-1, axis1=1, axis2=2).mean(-1)
        if T > 1
        else np.zeros(weights.shape[0])
    )
    return {
        "entropy": entropy,
        "previous": previous,
        "first": weights[:, :, 0].mean(-1),
        "self": diag.mean(-1),
    }


def head_summary(trace: Trace) -> dict[str, np.ndarray]:
    """Every metric for every head of every block: name -> [n_layers, n_heads]."""
    per_layer = [
        head_metrics(trace[stage_key("attn/weights", i)]) for i in range(trace.config.n_layers)
    ]
    return {name: np.stack([m[name] for m in per_layer]) for name in HEAD_METRICS}
