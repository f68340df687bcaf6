"""What the registry says about one stage (StageSpec), and the layouts its arrays take.

stages.py lists the stages; this module says what a listing holds, so that the registry's
parts (the attention stages live in attention_stages.py) can share it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.config import GPTConfig

# How a stage's array is laid out once the batch dimension is dropped (T tokens, D a width).
TOKEN_STAT = "token_stat"  # [T]: one number per token (kept [B, T, 1] by the model)
TOKENS_DIMS = "tokens_dims"  # [T, D]
UNBATCHED_TOKENS_DIMS = "unbatched_tokens_dims"  # [T, D], computed without a batch dim
CAUSAL_HEADS = "causal_heads"  # [H, T, T] causal attention weights, held packed
CAUSAL_SCORES = "causal_scores"  # [H, T, T] scores, -inf above the diagonal, never stored
TOKENS_HEADS_DIMS = "tokens_heads_dims"  # [T, H, d_head]
TOP_IDS = "top_k"  # [T, k] ids from the model's logits, not hooked ("top_k" in trace files)


@dataclass(frozen=True)
class StageSpec:
    name: str  # trace key, minus "blocks/{layer}/" for block stages
    section: str  # the section (navigator entry, view) it belongs to
    role: str  # what it is within its section: "mean", "out", "weights", ...
    module: str  # the module whose forward output it is; "{layer}" is the block
    layout: str  # array layout, one of the constants above
    title: str  # short name for labels
    formula: str  # what it computes, in symbols
    explanation: str  # one paragraph in plain words
    operation: str  # what it computes with shapes; placeholders filled by operation()
    depth_label: str | None = None  # short label where it is a point of the residual stream
    # The stages of the same block it is recomputed from on access, for a stage too large
    # to keep: no hook records it and no trace file stores it.
    derived_from: tuple[str, ...] = ()
    # A dropout mask, recorded only in a training-mode run: which call of `module` within
    # one forward (or block) it is; drop_shortcut runs twice per block. None for the rest.
    dropout_call: int | None = None

    @property
    def per_block(self) -> bool:
        return self.module.startswith("trf_blocks.")

    @property
    def derived(self) -> bool:
        return bool(self.derived_from)

    @property
    def is_dropout_mask(self) -> bool:
        return self.dropout_call is not None


def dropout_mask(
    name: str, section: str, module: str, layout: str, call: int, site: str, formula: str
) -> StageSpec:
    """The registry entry of one dropout site's mask; `site` says in words what it drops."""
    shape = "[{H}, {T}, {T}]" if layout == CAUSAL_HEADS else "[{T}, {E}]"
    return StageSpec(
        name,
        section,
        "dropout",
        module,
        layout,
        "Dropout mask",
        f"m ~ Bernoulli(1 - p) / (1 - p);  {formula}",
        f"Training mode only: dropout zeroes each entry of {site} with probability p "
        "(drop_rate) and multiplies the kept ones by 1/(1 - p), so that on average the values "
        "stay the same. The mask holds that multiplier: 0 where an entry was dropped, "
        "1/(1 - p) where it was kept. In evaluation mode dropout passes everything through.",
        f"keep each of {shape} with probability 1 − {{p}}, kept ×1/(1 − {{p}}) → {shape}",
        dropout_call=call,
    )


def operation(spec: StageSpec, cfg: GPTConfig, n_tokens: int) -> str:
    """What the stage computes for a prompt of n_tokens, with the shapes written out:
    "[14, 768] @ W_query [768, 768] -> ...". The placeholders of StageSpec.operation are
    {T} tokens, {last} the last position (T - 1), {E} emb_dim, {H} heads, {d} head_dim,
    {F} the feed-forward's hidden width, {V} vocab_size, {C} context_length and {p} drop_rate."""
    return spec.operation.format(
        T=n_tokens,
        last=n_tokens - 1,
        E=cfg.emb_dim,
        H=cfg.n_heads,
        d=cfg.head_dim,
        F=4 * cfg.emb_dim,
        V=cfg.vocab_size,
        C=cfg.context_length,
        p=f"{cfg.drop_rate:g}",
    )
