"""Attention scores recomputed from a block's stored queries and keys.

Kept for every block, the [H, T, T] scores would take as much memory as the rest of a trace
(12 x 48 MiB for gpt2-small at T = 1,024, half that packed), while the queries and keys they
come from take 2 x 3 MiB a block and are kept anyway. One matmul per head rebuilds them,
the way MultiHeadAttention.attend computes them.
"""

from __future__ import annotations

import numpy as np
import torch


def causal_scores(queries: np.ndarray, keys: np.ndarray, heads: slice | int = slice(None)):
    """The scaled scores q . k / sqrt(d_head) with -inf above the diagonal, float32: [H, T, T]
    (or [T, T] for one head). queries, keys: [T, H, d_head], as a trace holds them."""
    one = isinstance(heads, int)
    sel = slice(heads, heads + 1) if one else heads
    q = torch.tensor(queries[:, sel]).transpose(0, 1)  # [H, T, d_head]
    k = torch.tensor(keys[:, sel]).transpose(0, 1)  # [H, T, d_head]
    head_dim, n_tokens = q.shape[-1], q.shape[1]
    scores = (q * head_dim**-0.5) @ k.transpose(1, 2)  # [H, T, T]
    future = torch.ones(n_tokens, n_tokens, dtype=torch.bool).triu(1)
    scores.masked_fill_(future, -torch.inf)  # as the model masks them
    scores = scores.numpy()
    return scores[0] if one else scores


def scores_shape(queries_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """[H, T, T] for queries of shape [T, H, d_head]."""
    n_tokens, heads, _ = queries_shape
    return heads, n_tokens, n_tokens
