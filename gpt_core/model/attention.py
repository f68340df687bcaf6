"""Causal multi-head self-attention with the softmax kept explicit.

A fused attention kernel never materialises the weights; this path does, and passes them
through `weights_point` so a hook can read them, and each head's context vector through
`context_point` so a hook can switch a head off before `out_proj` mixes the heads. The
queries, keys and values pass through probe points of their own, once split into heads.
"""

import torch
from torch import Tensor, nn

from .probe_point import ProbePoint


class MultiHeadAttention(nn.Module):
    def __init__(
        self, d_in: int, d_out: int, dropout: float, num_heads: int, qkv_bias: bool = False
    ):
        super().__init__()
        if d_out % num_heads:
            raise ValueError("d_out must be divisible by num_heads")
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.queries_point = ProbePoint()  # each head's query per token, [B, T, H, d_head]
        self.keys_point = ProbePoint()  # each head's key per token, [B, T, H, d_head]
        self.values_point = ProbePoint()  # each head's value per token, [B, T, H, d_head]
        self.weights_point = ProbePoint()  # attention weights after softmax, [B, H, T, T]
        self.context_point = ProbePoint()  # each head's context vector, [B, T, H, d_head]
        # The causal mask is made per call rather than kept as a buffer: it costs next to
        # nothing, and a model built on the meta device then needs no buffer repair.

    def forward(self, x: Tensor) -> Tensor:
        return self.attend(*self.project(x))  # [B, T, d_out]

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values, split into heads: each [B, H, T, d_head]."""
        b, num_tokens, _ = x.shape  # x: [B, T, d_in]
        queries = self.W_query(x)  # [B, T, d_out]
        keys = self.W_key(x)  # [B, T, d_out]
        values = self.W_value(x)  # [B, T, d_out]
        # Split d_out into heads: head h owns features h * d_head .. (h + 1) * d_head - 1.
        split = (b, num_tokens, self.num_heads, self.head_dim)
        queries = self.queries_point(queries.view(split))  # [B, T, H, d_head]
        keys = self.keys_point(keys.view(split))  # [B, T, H, d_head]
        values = self.values_point(values.view(split))  # [B, T, H, d_head]
        # Heads become a batch dimension, so that each attends on its own.
        queries = queries.transpose(1, 2)  # [B, H, T, d_head]
        keys = keys.transpose(1, 2)  # [B, H, T, d_head]
        values = values.transpose(1, 2)  # [B, H, T, d_head]
        return queries, keys, values

    def attention_weights(self, queries: Tensor, keys: Tensor) -> Tensor:
        """softmax of the scaled scores, each query masked off the keys after it:
        [B, H, Tq, T]. The queries may be the last few positions only."""
        num_queries, num_keys = queries.shape[2], keys.shape[2]
        # Scaling the queries by 1/sqrt(d_head) rather than the [T, T] scores saves a pass
        # over the largest tensor of the block.
        attn_scores = (queries * self.head_dim**-0.5) @ keys.transpose(2, 3)  # [B, H, Tq, T]
        future = torch.ones(num_queries, num_keys, dtype=torch.bool, device=keys.device)
        future = future.triu(1 + num_keys - num_queries)  # query i is position T - Tq + i
        attn_scores.masked_fill_(future, -torch.inf)  # a token sees only itself and the past
        return torch.softmax(attn_scores, dim=-1)  # [B, H, Tq, T]

    def attend(self, queries: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        """Each query's weighted average of the values, heads mixed by out_proj. The queries
        may be the last few positions only (then the output is theirs)."""
        attn_weights = self.weights_point(self.attention_weights(queries, keys))  # [B, H, Tq, T]
        attn_weights = self.dropout(attn_weights)
        context = (attn_weights @ values).transpose(1, 2)  # [B, Tq, H, d_head]
        context = self.context_point(context)
        context = context.flatten(2)  # [B, Tq, d_out] (a hook may have changed B)
        return self.out_proj(context)  # [B, Tq, d_out]
