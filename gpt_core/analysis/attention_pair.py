"""One (query, key) pair of one attention head, step by step, on a trace's own numbers.

How much does position t (the query) read from position s (the key)? The head's query at t
and key at s multiply feature by feature; the products sum to q . k, which 1/sqrt(d_head)
scales into a score; the causal mask replaces the score with -inf when s > t; the softmax
over t's row of scores turns it into the weight w_ts; the weighted values w_ts v_s sum to
the head's context vector at t, which out_proj mixes with the other heads' into attn/out.

attention_pair() reads every number from the trace (queries, keys, values, scores, weights,
context vectors, attention output) and never runs the model; the sums and products it lays
out are recomputed in float64 from those float32 numbers, so that a view can show them
adding up. Qt-free: the attention view and the `attention` command both read it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..model import GPTModel
from ..probe import Trace, stage_key

_READS = ("attn/queries", "attn/keys", "attn/values", "attn/weights", "attn/context")


@dataclass(frozen=True)
class AttentionPair:
    layer: int
    head: int
    query: int  # t: the position whose row of weights this is
    key: int  # s: the position it reads from
    q: np.ndarray  # [d_head] float32: the head's query at t, unscaled
    k: np.ndarray  # [d_head] float32: the head's key at s
    products: np.ndarray  # [d_head] float64: q_i k_i
    dot: float  # q . k, the products' sum
    scale: float  # 1 / sqrt(d_head)
    score: float  # dot * scale: the scaled score, before the mask
    masked: bool  # s > t: the mask sets the score to -inf, so the weight is 0
    row: np.ndarray  # [T] float32: the scaled scores of query t, -inf for s > t
    row_max: float  # the row's largest score, subtracted before exp (as softmax does)
    exps: np.ndarray  # [t + 1] float64: exp(row_s - row_max) for s <= t
    exp_sum: float  # their sum: w_ts = exps[s] / exp_sum
    weights_row: np.ndarray  # [T] float32: the attention weights of query t
    weight: float  # w_ts; 0 when masked
    values: np.ndarray  # [t + 1, d_head] float32: the head's values v_s for s <= t
    weighted_values: np.ndarray  # [t + 1, d_head] float64: w_ts v_s; they sum to context
    context: np.ndarray  # [d_head] float32: the head's context vector at t
    ablated: bool  # the run switched this head off: its context vector is not their sum
    # Given out_proj's weight and bias (else None):
    out_proj_rows: np.ndarray | None = None  # [d_head, E]: this head's rows of W_O^T
    head_out: np.ndarray | None = None  # [E] float64: context @ out_proj_rows
    out_bias: np.ndarray | None = None  # [E] float32: out_proj's bias, added once
    attn_out: np.ndarray | None = None  # [E] float64: concat of all heads' contexts W_O^T + b
    attn_out_trace: np.ndarray | None = None  # [E] float32: attn/out at t, as the run made it


def attention_pair(
    trace: Trace,
    layer: int,
    head: int,
    query: int,
    key: int,
    out_proj_weight: np.ndarray | None = None,
    out_proj_bias: np.ndarray | None = None,
) -> AttentionPair:
    """Every step from head `head`'s query at position `query` and key at position `key` to
    the weight between them and the head's context vector, in block `layer` of the trace.

    out_proj_weight [E, E] ([out, in], as torch keeps it) and out_proj_bias [E]: that
    block's out_proj (out_proj_arrays gives them), to follow the context vector into
    attn/out. ValueError for a block, head or position that does not exist, or a trace
    that lacks the stages (one saved by an older GPT Explorer).

    In a train-mode run, dropout acts on the weights after they are recorded, so the
    weighted values need not sum to the recorded context vector.
    """
    cfg = trace.config
    layer = _checked_index("block", layer, cfg.n_layers)
    head = _checked_index("head", head, cfg.n_heads)
    query = _checked_index("query position", query, trace.n_tokens)
    key = _checked_index("key position", key, trace.n_tokens)
    lacking = [name for name in _READS if stage_key(name, layer) not in trace]
    if lacking:
        raise ValueError(
            f"this trace has no {', '.join(lacking)} for block {layer} (it was saved by an "
            "older GPT Explorer): capture the prompt again"
        )

    def read(name: str) -> np.ndarray:
        return trace[stage_key(name, layer)]

    q = read("attn/queries")[query, head]  # [d_head]
    k = read("attn/keys")[key, head]  # [d_head]
    products = q.astype(np.float64) * k  # [d_head]
    dot, scale = float(products.sum()), cfg.head_dim**-0.5
    row = trace.head_scores(layer, head)[query]  # [T], -inf after the query
    row_max = float(row.max())
    exps = np.exp(row[: query + 1].astype(np.float64) - row_max)  # [t + 1]
    weights_row = trace.head_weights(layer, head)[query]  # [T]
    values = read("attn/values")[: query + 1, head]  # [t + 1, d_head]
    context = read("attn/context")[query, head]  # [d_head]
    pair = AttentionPair(
        layer=layer,
        head=head,
        query=query,
        key=key,
        q=q,
        k=k,
        products=products,
        dot=dot,
        scale=scale,
        score=dot * scale,
        masked=key > query,
        row=row,
        row_max=row_max,
        exps=exps,
        exp_sum=float(exps.sum()),
        weights_row=weights_row,
        weight=float(weights_row[key]),
        values=values,
        weighted_values=weights_row[: query + 1, None].astype(np.float64) * values,
        context=context,
        ablated=(layer, head) in trace.interventions.ablate_heads,
    )
    if out_proj_weight is None and out_proj_bias is None:
        return pair
    return _with_out_proj(pair, trace, out_proj_weight, out_proj_bias)


def _with_out_proj(pair: AttentionPair, trace: Trace, weight, bias) -> AttentionPair:
    """The pair with the head's context vector followed through out_proj."""
    cfg = trace.config
    E, d = cfg.emb_dim, cfg.head_dim
    if weight is None or bias is None:
        raise ValueError("give both out_proj's weight and its bias, or neither")
    weight, bias = np.asarray(weight), np.asarray(bias)
    if weight.shape != (E, E) or bias.shape != (E,):
        raise ValueError(
            f"out_proj's weight and bias are {list(weight.shape)} and {list(bias.shape)}; "
            f"this model's are [{E}, {E}] and [{E}]"
        )
    if stage_key("attn/out", pair.layer) not in trace:
        raise ValueError(f"this trace has no attn/out for block {pair.layer}")
    # out_proj computes context_concat @ W^T: head h's d features of the concatenation meet
    # rows h d .. (h + 1) d - 1 of W^T, i.e. those columns of W.
    rows = weight[:, pair.head * d : (pair.head + 1) * d].T  # [d_head, E]
    contexts = trace[stage_key("attn/context", pair.layer)][pair.query]  # [H, d_head]
    concat = contexts.reshape(E).astype(np.float64)  # [E]: the heads side by side
    return replace(
        pair,
        out_proj_rows=rows,
        head_out=pair.context.astype(np.float64) @ rows,  # [E]
        out_bias=bias,
        attn_out=concat @ weight.T + bias,  # [E]
        attn_out_trace=trace[stage_key("attn/out", pair.layer)][pair.query],  # [E]
    )


def default_key(trace: Trace, layer: int, head: int, query: int) -> int:
    """The key a query weights most: the pair shown when no key is chosen (the first of
    equals; 0 for a row with no finite weight, as from non-finite weights)."""
    row = trace.head_weights(layer, head)[query]  # [T]
    finite = np.where(np.isfinite(row), row, -np.inf)
    return int(np.argmax(finite[: query + 1]))


def out_proj_arrays(model: GPTModel, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Block `layer`'s out_proj weight [E, E] ([out, in]) and bias [E], float32 numpy."""
    out_proj = model.trf_blocks[_checked_index("block", layer, model.cfg.n_layers)].att.out_proj
    return tuple(p.detach().float().cpu().numpy().copy() for p in (out_proj.weight, out_proj.bias))


def _checked_index(what: str, value, size: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    if not 0 <= value < size:
        raise ValueError(f"{what} {value} does not exist: {what}s are 0..{size - 1}")
    return int(value)
