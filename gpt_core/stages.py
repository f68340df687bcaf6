"""The stages a Trace records, in data-flow order, with what each one computes.

A StageSpec is a template (its key has `{i}` for the block index); `stage_specs(cfg)`
expands them for a model. The explanations are the app's own words; the GUI shows them
beside each view.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import GPTConfig


@dataclass(frozen=True)
class StageSpec:
    key: str  # trace key; "{i}" is the 0-based block index
    module: str  # module whose forward produces it; "{i}" as above
    kind: str  # what sort of tensor it is, which picks the view that draws it
    title: str  # short name for labels
    formula: str  # what it computes, in symbols
    explanation: str  # one paragraph in plain words


_EMBEDDINGS = [
    StageSpec(
        "embeddings/token",
        "tok_emb",
        "embedding",
        "Token embedding",
        "E_tok[id_t]",
        "Each token id picks one row of the token-embedding matrix: a learned vector of "
        "emb_dim numbers that stands for the token wherever it appears. Nothing about the "
        "token's position or neighbours is in it yet.",
    ),
    StageSpec(
        "embeddings/position",
        "pos_emb",
        "embedding",
        "Positional embedding",
        "E_pos[t]",
        "Attention by itself cannot tell token order, so GPT-2 adds a learned vector per "
        "position 0, 1, 2, ... The same row is used for position t whatever the token.",
    ),
    StageSpec(
        "embeddings/sum",
        "drop_emb",
        "embedding",
        "Embedding sum",
        "x_0 = E_tok[id_t] + E_pos[t]",
        "Token and positional embeddings are added (then embedding dropout, which is off "
        "in eval mode). This is the start of the residual stream: every block reads from "
        "it and adds its own contribution back.",
    ),
]

_BLOCK = [
    StageSpec(
        "blocks/{i}/ln1/mean",
        "trf_blocks.{i}.norm1.mean_point",
        "ln_stat",
        "LayerNorm 1 mean",
        "mu_t = mean_j x_tj",
        "The mean of each token's residual vector, over the emb_dim features, as the first "
        "LayerNorm computes it before subtracting it.",
    ),
    StageSpec(
        "blocks/{i}/ln1/var",
        "trf_blocks.{i}.norm1.var_point",
        "ln_stat",
        "LayerNorm 1 variance",
        "sigma_t^2 = mean_j (x_tj - mu_t)^2",
        "The biased variance of each token's residual vector. The LayerNorm divides by "
        "sqrt(variance + 1e-5) so every token reaches attention at the same scale.",
    ),
    StageSpec(
        "blocks/{i}/ln1/out",
        "trf_blocks.{i}.norm1",
        "layernorm",
        "LayerNorm 1",
        "y = scale * (x - mu) / sqrt(sigma^2 + eps) + shift",
        "Pre-norm: the residual stream is normalised per token to mean 0 and variance 1, "
        "then stretched and moved by the learned scale and shift. Attention reads this, "
        "not the raw stream.",
    ),
    StageSpec(
        "blocks/{i}/attn/weights",
        "trf_blocks.{i}.att.weights_point",
        "attention",
        "Attention weights",
        "A_h = softmax(Q_h K_h^T / sqrt(d_head) + causal mask)",
        "Each head projects the normalised tokens to queries, keys and values. A query's "
        "dot products with the keys, scaled by 1/sqrt(d_head), become a probability "
        "distribution over the tokens before it (the causal mask hides the future): row t "
        "says how much token t reads from each earlier token. Rows sum to 1.",
    ),
    StageSpec(
        "blocks/{i}/attn/context",
        "trf_blocks.{i}.att.context_point",
        "context",
        "Head context vectors",
        "z_h = A_h V_h",
        "Each head's output per token: the attention-weighted average of the value "
        "vectors, d_head numbers per head. Switching a head off acts here, before the heads "
        "are mixed.",
    ),
    StageSpec(
        "blocks/{i}/attn/out",
        "trf_blocks.{i}.att",
        "vectors",
        "Attention output",
        "attn = concat_h(z_h) W_O + b_O",
        "The heads' context vectors side by side, projected back to emb_dim by out_proj. "
        "This is what attention writes into the residual stream.",
    ),
    StageSpec(
        "blocks/{i}/resid_mid",
        "trf_blocks.{i}.resid_mid_point",
        "residual",
        "Residual after attention",
        "x_mid = x + attn",
        "The shortcut: the block's input plus the attention output (after shortcut "
        "dropout, off in eval mode). Information a block does not change flows past it.",
    ),
    StageSpec(
        "blocks/{i}/ln2/mean",
        "trf_blocks.{i}.norm2.mean_point",
        "ln_stat",
        "LayerNorm 2 mean",
        "mu_t = mean_j x_mid,tj",
        "The per-token mean of the residual stream as the second LayerNorm sees it.",
    ),
    StageSpec(
        "blocks/{i}/ln2/var",
        "trf_blocks.{i}.norm2.var_point",
        "ln_stat",
        "LayerNorm 2 variance",
        "sigma_t^2 = mean_j (x_mid,tj - mu_t)^2",
        "The per-token biased variance of the residual stream before the feed-forward network.",
    ),
    StageSpec(
        "blocks/{i}/ln2/out",
        "trf_blocks.{i}.norm2",
        "layernorm",
        "LayerNorm 2",
        "y = scale * (x_mid - mu) / sqrt(sigma^2 + eps) + shift",
        "The residual stream normalised again, per token, for the feed-forward network.",
    ),
    StageSpec(
        "blocks/{i}/ff/pre_gelu",
        "trf_blocks.{i}.ff.layers.0",
        "ff_hidden",
        "Feed-forward pre-GELU",
        "h = y W_1 + b_1   (emb_dim -> 4 emb_dim)",
        "The first linear layer widens each token to 4 x emb_dim hidden units. Tokens do "
        "not interact here: the same weights act on every position separately.",
    ),
    StageSpec(
        "blocks/{i}/ff/gelu",
        "trf_blocks.{i}.ff.layers.1",
        "ff_hidden",
        "GELU",
        "g = 0.5 h (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3)))",
        "GELU keeps positive inputs almost unchanged and squashes negative ones towards "
        "zero (with a small dip below it): the non-linearity that lets the network do more "
        "than one big matrix product.",
    ),
    StageSpec(
        "blocks/{i}/ff/out",
        "trf_blocks.{i}.ff",
        "vectors",
        "Feed-forward output",
        "ff = g W_2 + b_2   (4 emb_dim -> emb_dim)",
        "The second linear layer projects the hidden units back to emb_dim: what the "
        "feed-forward network writes into the residual stream.",
    ),
    StageSpec(
        "blocks/{i}/out",
        "trf_blocks.{i}",
        "residual",
        "Block output",
        "x_out = x_mid + ff",
        "The residual stream after the block: its input plus what attention and the "
        "feed-forward network added. The next block reads this.",
    ),
]

_FINAL = [
    StageSpec(
        "final_norm/mean",
        "final_norm.mean_point",
        "ln_stat",
        "Final LayerNorm mean",
        "mu_t = mean_j x_tj",
        "The per-token mean of the last block's output.",
    ),
    StageSpec(
        "final_norm/var",
        "final_norm.var_point",
        "ln_stat",
        "Final LayerNorm variance",
        "sigma_t^2 = mean_j (x_tj - mu_t)^2",
        "The per-token biased variance of the last block's output.",
    ),
    StageSpec(
        "final_norm/out",
        "final_norm",
        "layernorm",
        "Final LayerNorm",
        "y = scale * (x - mu) / sqrt(sigma^2 + eps) + shift",
        "One last normalisation of the residual stream before it is compared with every "
        "token of the vocabulary.",
    ),
    StageSpec(
        "logits/topk_ids",
        "out_head",
        "logits",
        "Next-token predictions",
        "p = softmax(y W_head^T)",
        "The output head scores every vocabulary token against each position's vector; "
        "softmax turns the scores into probabilities for the next token. The trace keeps "
        "the k most likely tokens at every position (ids here, probabilities in "
        "logits/topk_probs) and all scores at the last position (logits/last).",
    ),
]


def stage_specs(cfg: GPTConfig) -> list[tuple[StageSpec, int | None]]:
    """Every stage of a model with this config, in data-flow order, with its block index."""
    out: list[tuple[StageSpec, int | None]] = [(s, None) for s in _EMBEDDINGS]
    for i in range(cfg.n_layers):
        out += [(s, i) for s in _BLOCK]
    out += [(s, None) for s in _FINAL]
    return out


def block_stage_spec(suffix: str) -> StageSpec:
    """The block stage whose key ends with `suffix` (e.g. "attn/weights")."""
    for spec in _BLOCK:
        if spec.key.endswith("/" + suffix):
            return spec
    raise KeyError(suffix)
