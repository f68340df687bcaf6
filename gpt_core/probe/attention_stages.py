"""The attention's stages, in data-flow order: queries, keys and values split into heads,
the scaled and masked scores (the "attention_steps" section, which explains one query and
key pair), then the weights, each head's context vector and the output that out_proj writes
into the residual stream (the "attention" section). Part of the registry (stages.py)."""

from __future__ import annotations

from .stage_spec import (
    CAUSAL_HEADS,
    CAUSAL_SCORES,
    TOKENS_DIMS,
    TOKENS_HEADS_DIMS,
    StageSpec,
    dropout_mask,
)


def _projection(role: str, matrix: str, symbol: str, explanation: str) -> StageSpec:
    """The queries, keys or values: the normalised tokens times one matrix, split into heads."""
    return StageSpec(
        f"attn/{role}",
        "attention_steps",
        role,
        f"trf_blocks.{{layer}}.att.{role}_point",
        TOKENS_HEADS_DIMS,
        f"{role.capitalize()} (per head)",
        f"{symbol}_h = (y {matrix} + b)[:, h d_head : (h + 1) d_head]",
        explanation,
        f"[{{T}}, {{E}}] @ {matrix} [{{E}}, {{E}}] → [{{T}}, {{E}}] → view [{{T}}, {{H}}, {{d}}] "
        f"→ transpose [{{H}}, {{T}}, {{d}}]",
    )


ATTENTION_STAGES: tuple[StageSpec, ...] = (
    _projection(
        "queries",
        "W_query",
        "Q",
        "What each token is looking for. The normalised token times W_query gives emb_dim "
        "numbers, cut into n_heads pieces of d_head: head h's query. Stored unscaled, as "
        "W_query makes it.",
    ),
    _projection(
        "keys",
        "W_key",
        "K",
        "What each token offers to be found by. A query that points the same way as a "
        "token's key gives that token a high score in the same head.",
    ),
    _projection(
        "values",
        "W_value",
        "V",
        "What each token passes on when a head attends to it: a head's output at token t is "
        "an average of the values of tokens 0..t, weighted by the attention weights.",
    ),
    StageSpec(
        "attn/scores",
        "attention_steps",
        "scores",
        "trf_blocks.{layer}.att",
        CAUSAL_SCORES,
        "Attention scores",
        "S_h = Q_h K_h^T / sqrt(d_head), S_h[t, s] = -inf for s > t",
        "Each head's query at token t against every token's key: the dot products, scaled "
        "by 1/sqrt(d_head) so that they do not grow with the head size, then -inf above the "
        "diagonal, where the causal mask hides later tokens. The softmax of row t gives the "
        "attention weights. Recomputed from the queries and keys when asked for, as the model "
        "computes them: kept for every block they would take as much memory as the rest of "
        "the trace.",
        "[{H}, {T}, {d}] · {d}^-0.5 @ keys transposed [{H}, {d}, {T}] → [{H}, {T}, {T}] "
        "→ −inf above the diagonal",
        derived_from=("attn/queries", "attn/keys"),
    ),
    StageSpec(
        "attn/weights",
        "attention",
        "weights",
        "trf_blocks.{layer}.att.weights_point",
        CAUSAL_HEADS,
        "Attention weights",
        "A_h = softmax(Q_h K_h^T / sqrt(d_head) + causal mask)",
        "Each head projects the normalised tokens to queries, keys and values. A query's "
        "dot products with the keys, scaled by 1/sqrt(d_head), become a probability "
        "distribution over the tokens before it (the causal mask hides the future): row t "
        "says how much token t reads from each earlier token. Rows sum to 1.",
        "softmax of each row of [{H}, {T}, {T}] → [{H}, {T}, {T}]",
    ),
    dropout_mask(
        "attn/dropout",
        "attention",
        "trf_blocks.{layer}.att.dropout",
        CAUSAL_HEADS,
        0,
        "the attention weights (a dropped weight: that token is not read this time)",
        "A_h <- m ⊙ A_h",
    ),
    StageSpec(
        "attn/context",
        "attention",
        "context",
        "trf_blocks.{layer}.att.context_point",
        TOKENS_HEADS_DIMS,
        "Head context vectors",
        "z_h = A_h V_h",
        "Each head's output per token: the attention-weighted average of the value "
        "vectors, d_head numbers per head. Switching a head off acts here, before the heads "
        "are mixed.",
        "[{H}, {T}, {T}] @ values [{H}, {T}, {d}] → [{H}, {T}, {d}] → transpose [{T}, {H}, {d}]",
    ),
    StageSpec(
        "attn/out",
        "attention",
        "out",
        "trf_blocks.{layer}.att",
        TOKENS_DIMS,
        "Attention output",
        "attn = concat_h(z_h) W_O + b_O",
        "The heads' context vectors side by side, projected back to emb_dim by out_proj. "
        "This is what attention writes into the residual stream.",
        "[{T}, {H}, {d}] → concat heads [{T}, {E}] @ out_proj [{E}, {E}] → [{T}, {E}]",
    ),
)
