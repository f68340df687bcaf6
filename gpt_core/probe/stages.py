"""The stage registry: every array a Trace records, in data-flow order, and the sections of
the model a person steps through. The one place that knows trace keys, module paths, array
layouts, labels and explanations (what a StageSpec holds and the layouts: stage_spec.py);
the probe, the Trace, the analysis code and the app all read it.

A stage's name is its trace key without the block prefix ("ln1/out"; "embeddings/sum");
`stage_key(name, layer)` gives the key ("blocks/3/ln1/out"). A section groups the stages
one view draws ("Block 3 · LayerNorm 1"; sections.py). Adding a stage is one StageSpec here
(the attention section's are in attention_stages.py) plus the code that draws it. A derived
stage (StageSpec.derived_from) is recomputed from others when read, never recorded or saved.
"""

from __future__ import annotations

from ..model.config import GPTConfig
from .attention_stages import ATTENTION_STAGES
from .stage_spec import (
    TOKEN_STAT,
    TOKENS_DIMS,
    TOP_IDS,
    UNBATCHED_TOKENS_DIMS,
    StageSpec,
    dropout_mask,
)

BLOCK_PREFIX = "blocks/"
GRAD_PREFIX = "grad/"
LOGITS = "logits"  # the backward order's name for the [T, vocab] logits


def _ln_stages(section: str, prefix: str, module: str, reads: str) -> list[StageSpec]:
    """The mean, variance and output of one LayerNorm; `reads` names its input in formulas."""
    return [
        StageSpec(
            f"{prefix}/mean",
            section,
            "mean",
            f"{module}.mean_point",
            TOKEN_STAT,
            f"{_LN_NAMES[section]} mean",
            f"mu_t = mean_j {reads}_tj",
            f"The mean of each token's residual vector over the emb_dim features, as "
            f"{_LN_NAMES[section]} computes it before subtracting it.",
            "mean over the {E} features of [{T}, {E}] → [{T}]",
        ),
        StageSpec(
            f"{prefix}/var",
            section,
            "var",
            f"{module}.var_point",
            TOKEN_STAT,
            f"{_LN_NAMES[section]} variance",
            f"sigma_t^2 = mean_j ({reads}_tj - mu_t)^2",
            "The biased variance of each token's residual vector. The LayerNorm divides by "
            "sqrt(variance + 1e-5) so every token reaches the next layer at the same scale.",
            "mean of the squared deviations over {E} features of [{T}, {E}] → [{T}]",
        ),
        StageSpec(
            f"{prefix}/out",
            section,
            "out",
            module,
            TOKENS_DIMS,
            _LN_NAMES[section],
            f"y = scale * ({reads} - mu) / sqrt(sigma^2 + eps) + shift",
            _LN_OUT_EXPLANATIONS[section],
            "([{T}, {E}] − mean [{T}, 1]) / √(var [{T}, 1] + 1e-5) · scale [{E}] + shift [{E}] "
            "→ [{T}, {E}]",
        ),
    ]


_LN_NAMES = {"ln1": "LayerNorm 1", "ln2": "LayerNorm 2", "final_norm": "Final LayerNorm"}
_LN_OUT_EXPLANATIONS = {
    "ln1": "Pre-norm: the residual stream is normalised per token to mean 0 and variance 1, "
    "then stretched and moved by the learned scale and shift. Attention reads this, not the "
    "raw stream.",
    "ln2": "The residual stream normalised again, per token, for the feed-forward network.",
    "final_norm": "One last normalisation of the residual stream before it is compared with "
    "every token of the vocabulary.",
}

_STAGES: tuple[StageSpec, ...] = (
    StageSpec(
        "embeddings/token",
        "embeddings",
        "token",
        "tok_emb",
        TOKENS_DIMS,
        "Token embedding",
        "E_tok[id_t]",
        "Each token id picks one row of the token-embedding matrix: a learned vector of "
        "emb_dim numbers that stands for the token wherever it appears. Nothing about the "
        "token's position or neighbours is in it yet.",
        "ids [{T}] pick rows of tok_emb [{V}, {E}] → [{T}, {E}]",
    ),
    StageSpec(
        "embeddings/position",
        "embeddings",
        "position",
        "pos_emb",
        UNBATCHED_TOKENS_DIMS,
        "Positional embedding",
        "E_pos[t]",
        "Attention by itself cannot tell token order, so GPT-2 adds a learned vector per "
        "position 0, 1, 2, ... The same row is used for position t whatever the token.",
        "positions 0..{last} pick rows of pos_emb [{C}, {E}] → [{T}, {E}]",
    ),
    dropout_mask(
        "embeddings/dropout",
        "embeddings",
        "drop_emb",
        TOKENS_DIMS,
        0,
        "the embedding sum",
        "x_0 = m ⊙ (E_tok[id_t] + E_pos[t])",
    ),
    StageSpec(
        "embeddings/sum",
        "embeddings",
        "sum",
        "drop_emb",
        TOKENS_DIMS,
        "Embedding sum",
        "x_0 = E_tok[id_t] + E_pos[t]",
        "Token and positional embeddings are added (then embedding dropout, which is off "
        "in eval mode). This is the start of the residual stream: every block reads from "
        "it and adds its own contribution back.",
        "[{T}, {E}] + [{T}, {E}] → dropout → [{T}, {E}]",
        depth_label="embeddings",
    ),
    *_ln_stages("ln1", "ln1", "trf_blocks.{layer}.norm1", "x"),
    *ATTENTION_STAGES,
    dropout_mask(
        "attn/out_dropout",
        "resid_mid",
        "trf_blocks.{layer}.drop_shortcut",
        TOKENS_DIMS,
        0,
        "the attention output before it is added to the residual stream",
        "x_mid = x + m ⊙ attn",
    ),
    StageSpec(
        "resid_mid",
        "resid_mid",
        "stream",
        "trf_blocks.{layer}.resid_mid_point",
        TOKENS_DIMS,
        "Residual after attention",
        "x_mid = x + attn",
        "The shortcut: the block's input plus the attention output (after shortcut "
        "dropout, off in eval mode). Information a block does not change flows past it.",
        "x [{T}, {E}] + attn [{T}, {E}] → [{T}, {E}]",
        depth_label="mid",
    ),
    *_ln_stages("ln2", "ln2", "trf_blocks.{layer}.norm2", "x_mid"),
    StageSpec(
        "ff/pre_gelu",
        "ff",
        "pre_gelu",
        "trf_blocks.{layer}.ff.layers.0",
        TOKENS_DIMS,
        "Feed-forward pre-GELU",
        "h = y W_1 + b_1   (emb_dim -> 4 emb_dim)",
        "The first linear layer widens each token to 4 x emb_dim hidden units. Tokens do "
        "not interact here: the same weights act on every position separately.",
        "[{T}, {E}] @ [{E}, {F}] → [{T}, {F}]",
    ),
    StageSpec(
        "ff/gelu",
        "ff",
        "gelu",
        "trf_blocks.{layer}.ff.layers.1",
        TOKENS_DIMS,
        "GELU",
        "g = 0.5 h (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3)))",
        "GELU keeps positive inputs almost unchanged and squashes negative ones towards "
        "zero (with a small dip below it): the non-linearity that lets the network do more "
        "than one big matrix product.",
        "GELU of each of the [{T}, {F}] numbers → [{T}, {F}]",
    ),
    StageSpec(
        "ff/out",
        "ff",
        "out",
        "trf_blocks.{layer}.ff",
        TOKENS_DIMS,
        "Feed-forward output",
        "ff = g W_2 + b_2   (4 emb_dim -> emb_dim)",
        "The second linear layer projects the hidden units back to emb_dim: what the "
        "feed-forward network writes into the residual stream.",
        "ff: [{T}, {E}] @ [{E}, {F}] → GELU → @ [{F}, {E}] → [{T}, {E}]",
    ),
    dropout_mask(
        "ff/out_dropout",
        "block_out",
        "trf_blocks.{layer}.drop_shortcut",
        TOKENS_DIMS,
        1,
        "the feed-forward output before it is added to the residual stream",
        "x_out = x_mid + m ⊙ ff",
    ),
    StageSpec(
        "out",
        "block_out",
        "stream",
        "trf_blocks.{layer}",
        TOKENS_DIMS,
        "Block output",
        "x_out = x_mid + ff",
        "The residual stream after the block: its input plus what attention and the "
        "feed-forward network added. The next block reads this.",
        "x_mid [{T}, {E}] + ff [{T}, {E}] → [{T}, {E}]",
        depth_label="out",
    ),
    *_ln_stages("final_norm", "final_norm", "final_norm", "x"),
    StageSpec(
        "logits/topk_ids",
        "output",
        "top_k",
        "out_head",
        TOP_IDS,
        "Next-token predictions",
        "p = softmax(y W_head^T)",
        "The output head scores every vocabulary token against each position's vector; "
        "softmax turns the scores into probabilities for the next token. The trace keeps "
        "the k most likely tokens at every position (ids here, probabilities in "
        "logits/topk_probs) and all scores at the last position (logits/last).",
        "[{T}, {E}] @ out_head [{E}, {V}] → logits [{T}, {V}] → softmax → k most likely "
        "ids per position [{T}, k]",
    ),
)

STAGES: dict[str, StageSpec] = {spec.name: spec for spec in _STAGES}


# --- keys ---
def stage_key(name: str, layer: int | None = None) -> str:
    """The trace key of stage `name` ("ln1/out") in block `layer` (None outside blocks)."""
    spec = STAGES[name]
    if spec.per_block != (layer is not None):
        need = "a block index" if spec.per_block else "no block index"
        raise ValueError(f"stage {name!r} takes {need}, got layer={layer!r}")
    return f"{BLOCK_PREFIX}{layer}/{name}" if spec.per_block else name


def grad_key(key: str) -> str:
    """The trace key of the gradient of stage `key`."""
    return GRAD_PREFIX + key


def parse_key(key: str) -> tuple[StageSpec, int | None]:
    """The stage and block of a trace key; KeyError for a key that is not a stage."""
    if key.startswith(BLOCK_PREFIX):
        parts = key.split("/", 2)
        if len(parts) != 3 or not parts[1].isdigit() or not STAGES[parts[2]].per_block:
            raise KeyError(key)
        return STAGES[parts[2]], int(parts[1])
    spec = STAGES[key]
    if spec.per_block:
        raise KeyError(key)
    return spec, None


def module_path(spec: StageSpec, layer: int | None) -> str:
    return spec.module.format(layer=layer)


def in_flow_order(specs, n_layers: int) -> list:
    """(spec, layer) pairs in data-flow order: the specs before the first block spec, the
    block specs once per block, then the rest (the registry lists them in that order)."""
    first = next(i for i, s in enumerate(specs) if s.per_block)
    last = max(i for i, s in enumerate(specs) if s.per_block) + 1
    pairs = [(s, None) for s in specs[:first]]
    for layer in range(n_layers):
        pairs += [(s, layer) for s in specs[first:last]]
    return pairs + [(s, None) for s in specs[last:]]


def stage_specs(cfg: GPTConfig) -> list[tuple[StageSpec, int | None]]:
    """Every stage of a model with this config, in data-flow order, with its block index."""
    return in_flow_order(_STAGES, cfg.n_layers)


def residual_stream(n_layers: int) -> list[tuple[str, str]]:
    """(trace key, short label) of every point along the residual stream, embeddings first."""
    points = []
    for spec, layer in in_flow_order(_STAGES, n_layers):
        if spec.depth_label is not None:
            label = spec.depth_label if layer is None else f"B{layer} {spec.depth_label}"
            points.append((stage_key(spec.name, layer), label))
    return points


def stream_before(key: str, n_layers: int) -> str:
    """The residual-stream point a stage reads from: the last one before it in data flow."""
    previous = None
    for spec, layer in in_flow_order(_STAGES, n_layers):
        here = stage_key(spec.name, layer)
        if here == key:
            if previous is None:
                raise ValueError(f"{key} comes before the residual stream starts")
            return previous
        if spec.depth_label is not None:
            previous = here
    raise KeyError(key)


def short_label(key: str) -> str:
    """ "blocks/3/attn/weights" -> "3 attn/weights": short enough for an axis."""
    try:
        spec, layer = parse_key(key)
    except KeyError:  # "logits"
        return key
    return spec.name if layer is None else f"{layer} {spec.name}"
