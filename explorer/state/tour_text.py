"""What each step of the guided tour says, written from the run's own numbers (no Qt).

A step's writer gets a TourContext (the trace on screen, the place the tour picked in it,
the model, the backward step if one ran) and returns Said: its 2-4 sentences and every
number it quotes, by name, so a test can hold each one against the trace. The numbers are
read from the trace (or computed from its arrays in float64), never canned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from explorer.state.app_state import AppState, LoadedModel
from gpt_core import Trace, get_tokenizer, stage_key


@dataclass(frozen=True)
class Focus:
    """Where the tour looks: the head, query and key it explains, and so the block it walks."""

    layer: int  # the block every per-block step opens
    head: int  # the head the attention steps explain
    query: int  # t: the last position, the one that predicts the next token
    key: int  # s: the position head `head` weights most from t


def pick_focus(trace: Trace) -> Focus:
    """The head whose attention at the last position is sharpest: the largest weight on one
    key (not counting position 0, where many heads park their attention, when there is
    another), among the heads the run left on (all of them if it switched every one off).
    The weights are recomputed from the queries and keys of that one row, in float64, only
    to choose; what a step quotes is read from the trace."""
    cfg, off = trace.config, trace.interventions
    t = trace.n_tokens - 1
    first = 1 if t >= 1 else 0
    candidates = []  # (weight, layer, head, key)
    for layer in range(cfg.n_layers):
        q = trace[stage_key("attn/queries", layer)][t].astype(np.float64)  # [H, d]
        k = trace[stage_key("attn/keys", layer)][: t + 1].astype(np.float64)  # [t + 1, H, d]
        scores = np.einsum("hd,shd->hs", q, k) * cfg.head_dim**-0.5  # [H, t + 1]
        with np.errstate(all="ignore"):
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
        weights = np.nan_to_num(weights[:, first:], nan=-1.0)  # [H, t + 1 - first]
        for head in range(cfg.n_heads):
            key = int(np.argmax(weights[head]))
            on = layer not in off.skip_layers and (layer, head) not in off.ablate_heads
            candidates.append((on, float(weights[head, key]), -layer, -head, key + first))
    on, _, layer, head, key = max(candidates)  # the first of equals
    return Focus(layer=-layer, head=-head, query=t, key=key)


@dataclass(frozen=True)
class TourContext:
    """What a step's writer reads: the whole app state (a step may read the generation
    settings or the backward step) and the place the tour picked in its trace."""

    state: AppState  # with a trace
    focus: Focus

    @property
    def trace(self) -> Trace:
        return self.state.trace

    @property
    def gradients(self) -> Trace | None:
        """The backward step of this run, once it ran."""
        return self.state.gradients


@dataclass(frozen=True)
class Said:
    text: str  # the step's sentences
    quoted: dict[str, float] = field(default_factory=dict)  # every number in it, by name


def number(value: float, style: str = "num") -> str:
    """A quoted number as the tour writes it: "num" 4 significant digits, "pct" a share in
    per cent to 3 significant digits, "int" a whole number with thousands separators."""
    if not math.isfinite(value):
        return "non-finite"
    if style == "pct":
        return f"{100 * value:.3g} %"
    if style == "int":
        return f"{int(value):,}"
    return f"{value:.4g}"


class Quotes:
    """Formats each number a step quotes and keeps it by name."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def __call__(self, name: str, value, style: str = "num") -> str:
        self.values[name] = float(value)
        return number(float(value), style)

    def said(self, *sentences: str) -> Said:
        return Said(" ".join(s for s in sentences if s), dict(self.values))


def token_at(trace: Trace, position: int) -> str:
    return f"“{trace.token_strings[position]}”"


def _norm(vector: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(vector, dtype=np.float64)))


def _row(trace: Trace, name: str, layer: int | None, position: int) -> np.ndarray:
    return trace[stage_key(name, layer)][position]


# --- the embeddings ---
def say_token_embedding(ctx: TourContext) -> Said:
    trace, t, q = ctx.trace, ctx.focus.query, Quotes()
    cfg = trace.config
    return q.said(
        f"Your prompt is {q('tokens', trace.n_tokens, 'int')} "
        f"token{'s' if trace.n_tokens > 1 else ''}.",
        f"Each token id picks one row of the token embedding table tok_emb "
        f"[{cfg.vocab_size:,}, {cfg.emb_dim}]: {token_at(trace, t)} is id "
        f"{q('id', trace.token_ids[t], 'int')}, and its row has length (L2 norm) "
        f"{q('norm', _norm(_row(trace, 'embeddings/token', None, t)))}.",
        "The heatmap shows those rows, one per token; the blue curve below gives each "
        "token's length.",
    )


def say_position_embedding(ctx: TourContext) -> Said:
    trace, t, q = ctx.trace, ctx.focus.query, Quotes()
    pos = trace["embeddings/position"].astype(np.float64)  # [T, E]
    first = f"Position {t} gets row {t} of pos_emb [{trace.config.context_length:,}, "
    first += f"{trace.config.emb_dim}], whatever token stands there."
    if t == 0:
        return q.said(first, f"Its row has length {q('norm_t', _norm(pos[0]))}.")
    cosine = float(pos[0] @ pos[t] / (np.linalg.norm(pos[0]) * np.linalg.norm(pos[t])))
    return q.said(
        first,
        f"Position 0's row has length {q('norm_0', _norm(pos[0]))}, position {t}'s "
        f"{q('norm_t', _norm(pos[t]))}; their cosine similarity is {q('cosine', cosine)}.",
        "A word that comes twice gets the same token row both times but two different "
        "position rows: the orange curve and the right-hand scatter show them.",
    )


def say_embedding_sum(ctx: TourContext) -> Said:
    trace, t, q = ctx.trace, ctx.focus.query, Quotes()
    token, pos, total = (
        _norm(_row(trace, f"embeddings/{part}", None, t)) for part in ("token", "position", "sum")
    )
    bigger = "token" if token >= pos else "position"
    return q.said(
        "The first block's input is their sum x₀ = tok_emb[id] + pos_emb[t], one row per token.",
        f"At {token_at(trace, t)} the token part has length {q('token', token)}, the position "
        f"part {q('position', pos)} and the sum {q('sum', total)}: the {bigger} part "
        "weighs more there.",
    )


# --- a block ---
def _say_layernorm(ctx: TourContext, ln: str, title: str, what_in: str) -> Said:
    trace, t, layer, q = ctx.trace, ctx.focus.query, ctx.focus.layer, Quotes()
    out = _row(trace, f"{ln}/out", layer, t).astype(np.float64)
    return q.said(
        f"{title} of block {layer} normalises each token on its own: {what_in} at "
        f"{token_at(trace, t)} has mean {q('mean', _row(trace, f'{ln}/mean', layer, t))} and "
        f"variance {q('var', _row(trace, f'{ln}/var', layer, t))}.",
        "It subtracts the mean and divides by √(variance + 1e-5), so every token comes out "
        "at mean 0 and variance 1; then the learned scale and shift act, and the output "
        f"has mean {q('out_mean', out.mean())} and standard deviation "
        f"{q('out_std', out.std())}.",
    )


def say_ln1(ctx: TourContext) -> Said:
    said = _say_layernorm(ctx, "ln1", "LayerNorm 1", "the residual stream")
    why = (
        f"The tour stays in block {ctx.focus.layer}: it holds the attention head with the "
        "sharpest look back from the last token."
    )
    return Said(f"{said.text} {why}", said.quoted)


def say_ln2(ctx: TourContext) -> Said:
    return _say_layernorm(ctx, "ln2", "LayerNorm 2", "the stream after attention")


def say_qkv(ctx: TourContext) -> Said:
    trace, f, q = ctx.trace, ctx.focus, Quotes()
    cfg = trace.config
    query = _row(trace, "attn/queries", f.layer, f.query)[f.head]
    key = _row(trace, "attn/keys", f.layer, f.key)[f.head]
    return q.said(
        f"LayerNorm 1's output is multiplied by W_query, W_key and W_value and split into "
        f"{cfg.n_heads} heads of {cfg.head_dim} numbers each.",
        f"The tour follows head {f.head}: {token_at(trace, f.query)} (t = {f.query}) asks with "
        f"its query, of length {q('query_norm', _norm(query))}, and {token_at(trace, f.key)} "
        f"(s = {f.key}) answers with its key, of length {q('key_norm', _norm(key))}.",
        "Step 1 shows both tokens' rows and the q, k and v they become.",
    )


def _weights_row(ctx: TourContext) -> np.ndarray:
    f = ctx.focus
    return ctx.trace.head_weights(f.layer, f.head)[f.query].astype(np.float64)  # [T]


def say_scores(ctx: TourContext) -> Said:
    trace, f, q = ctx.trace, ctx.focus, Quotes()
    d = trace.config.head_dim
    query = _row(trace, "attn/queries", f.layer, f.query)[f.head].astype(np.float64)
    key = _row(trace, "attn/keys", f.layer, f.key)[f.head].astype(np.float64)
    dot = float(query @ key)
    row = trace.head_scores(f.layer, f.head)[f.query][: f.query + 1]  # [t + 1]
    top = int(np.argmax(np.nan_to_num(row, nan=-np.inf)))
    return q.said(
        f"q_t · k_s multiplies the {d} features of the query and the key pairwise and adds "
        f"them up: {q('dot', dot)}; divided by √{d} that is the score {q('score', dot / d**0.5)}.",
        f"In row {f.query} (the framed row of the scores heatmap) the highest score, "
        f"{q('row_max', row[top])}, is at {token_at(trace, top)}.",
    )


def say_mask(ctx: TourContext) -> Said:
    trace, f, q = ctx.trace, ctx.focus, Quotes()
    T = trace.n_tokens
    upper = np.triu(trace.head_weights(f.layer, f.head).astype(np.float64), k=1)  # [T, T]
    if T == 1:
        return q.said(
            "A token may read only itself and the tokens before it: the causal mask sets every "
            "score above the diagonal to −∞. A one-token prompt has no such score, so the mask "
            "changes nothing here; add a word and run again to see it act."
        )
    return q.said(
        f"A token may read only itself and the tokens before it: the causal mask sets every "
        f"score above the diagonal to −∞ (grey), {q('masked', T * (T - 1) // 2, 'int')} of the "
        f"head's {q('cells', T * T, 'int')} cells.",
        f"Row 0 ({token_at(trace, 0)}) sees only itself; row {f.query}, the last, sees all "
        f"{q('visible', f.query + 1, 'int')} tokens.",
        f"After the softmax those cells weigh exactly {q('masked_weight', np.abs(upper).max())}.",
    )


def say_softmax(ctx: TourContext) -> Said:
    trace, f, q = ctx.trace, ctx.focus, Quotes()
    weights = _weights_row(ctx)
    order = [s for s in np.argsort(-weights[: f.query + 1], kind="stable") if s != f.key]
    second = (
        f" Next comes {token_at(trace, order[0])} with {q('second', weights[order[0]], 'pct')}."
        if order
        else ""
    )
    return q.said(
        f"{token_at(trace, f.query)} puts {q('weight', weights[f.key], 'pct')} of its attention "
        f"on {token_at(trace, f.key)}.",
        f"The softmax raises e to each of row {f.query}'s {f.query + 1} visible scores (less "
        "their largest) and divides by their sum, so the row's weights are positive and add "
        f"up to {q('row_sum', weights[: f.query + 1].sum())}.{second}",
    )


def say_context(ctx: TourContext) -> Said:
    trace, f, q = ctx.trace, ctx.focus, Quotes()
    cfg = trace.config
    context = _row(trace, "attn/context", f.layer, f.query)[f.head]
    value = _row(trace, "attn/values", f.layer, f.key)[f.head]
    out = _row(trace, "attn/out", f.layer, f.query)
    return q.said(
        f"Head {f.head}'s context vector at {token_at(trace, f.query)} is the weighted sum of the "
        f"values of the tokens it sees: {cfg.head_dim} numbers of length "
        f"{q('context_norm', _norm(context))}, to which {token_at(trace, f.key)}'s value (length "
        f"{q('value_norm', _norm(value))}) gives {q('weight', _weights_row(ctx)[f.key], 'pct')}.",
        f"out_proj takes the {cfg.n_heads} heads' context vectors side by side "
        f"({cfg.emb_dim} numbers) and mixes them into the attention output, of length "
        f"{q('out_norm', _norm(out))} here (steps 5 and 6).",
        _switched_off(trace, f),
    )


def _switched_off(trace: Trace, f: Focus) -> str:
    """Said of a head the run switched off (the tour picks one only if every head is off)."""
    off = trace.interventions
    if f.layer in off.skip_layers:
        return f"Block {f.layer} is switched off in this run: it passes its input on unchanged."
    if (f.layer, f.head) in off.ablate_heads:
        return f"Head {f.head} is switched off in this run: out_proj gets its {off.mode} instead."
    return ""


def _say_residual(ctx: TourContext, before: str, branch: str, after: str, what: str) -> Said:
    trace, t, layer, q = ctx.trace, ctx.focus.query, ctx.focus.layer, Quotes()
    return q.said(
        f"The {what} is added to the stream it read from.",
        f"At {token_at(trace, t)} the stream had length "
        f"{q('before', _norm(_row_at(ctx, before)))}, "
        f"the {what} adds a vector of length {q('branch', _norm(_row(trace, branch, layer, t)))}, "
        f"and the sum has length {q('after', _norm(_row(trace, after, layer, t)))}.",
        "The depth × tokens heatmap shows every token's length after every step.",
    )


def _row_at(ctx: TourContext, name: str) -> np.ndarray:
    """The stream before a block (`name` "in": the previous block's output or x₀)."""
    layer, t = ctx.focus.layer, ctx.focus.query
    if name == "in":
        return _row(ctx.trace, "out", layer - 1, t) if layer else ctx.trace["embeddings/sum"][t]
    return _row(ctx.trace, name, layer, t)


def say_resid_mid(ctx: TourContext) -> Said:
    return _say_residual(ctx, "in", "attn/out", "resid_mid", "attention output")


def say_feed_forward(ctx: TourContext) -> Said:
    trace, t, layer, q = ctx.trace, ctx.focus.query, ctx.focus.layer, Quotes()
    pre = _row(trace, "ff/pre_gelu", layer, t).astype(np.float64)  # [4E]
    gelu = _row(trace, "ff/gelu", layer, t).astype(np.float64)  # [4E]
    unit = int(np.argmax(np.nan_to_num(gelu, nan=-np.inf)))
    return q.said(
        f"The feed-forward widens each token to {pre.size:,} hidden units, applies GELU and "
        f"narrows back to {trace.config.emb_dim}.",
        f"At {token_at(trace, t)}, {q('negative', (pre < 0).mean(), 'pct')} of the units are "
        "negative before GELU, which squashes them to between −0.17 and 0; the most active "
        f"unit, {unit}, goes from {q('unit_pre', pre[unit])} to {q('unit_gelu', gelu[unit])}.",
        f"The output added to the stream has length "
        f"{q('out_norm', _norm(_row(trace, 'ff/out', layer, t)))}.",
    )


def say_block_out(ctx: TourContext) -> Said:
    said = _say_residual(ctx, "resid_mid", "ff/out", "out", "feed-forward output")
    n_layers, layer = ctx.trace.config.n_layers, ctx.focus.layer
    goes = "the final LayerNorm" if layer == n_layers - 1 else f"block {layer + 1}"
    more = f" This is block {layer}'s output; it goes on to {goes}."
    return Said(said.text + more, said.quoted)


# --- the output ---
def say_output(ctx: TourContext) -> Said:
    trace, t, q = ctx.trace, ctx.focus.query, Quotes()
    cfg, tokenizer = trace.config, get_tokenizer()
    ids, probs = trace["logits/topk_ids"][t], trace["logits/topk_probs"][t]
    second = (
        f", then “{tokenizer.display(ids[1])}” with {q('second', probs[1], 'pct')}"
        if len(ids) > 1
        else ""
    )
    return q.said(
        "After the last block the final LayerNorm normalises each token once more (at "
        f"{token_at(trace, t)}: mean {q('mean', trace['final_norm/mean'][t])}, variance "
        f"{q('var', trace['final_norm/var'][t])} in), and the output head multiplies it by a "
        f"[{cfg.emb_dim}, {cfg.vocab_size:,}] matrix: one logit per token of the vocabulary.",
        f"After {token_at(trace, t)} the model's most likely next token is "
        f"“{tokenizer.display(ids[0])}” with {q('top', probs[0], 'pct')}{second}.",
    )


def say_backward(ctx: TourContext) -> Said:
    trace, q = ctx.trace, Quotes()
    if trace.loss is None:
        return q.said(
            "The loss scores each token's prediction of the next one in the prompt, so it "
            "needs at least two tokens: add a word and run again to take the backward step."
        )
    uniform = math.log(trace.config.vocab_size)
    loss = q.said(
        f"The loss is the mean cross-entropy of each next token in the prompt: "
        f"{q('loss', trace.loss)} over {trace.n_tokens - 1} predictions (a uniform guess "
        f"among {trace.config.vocab_size:,} tokens would score ln V = {q('uniform', uniform)}).",
    )
    info = ctx.gradients.backward if ctx.gradients is not None else None
    if info is None:
        steps = "Press “Backward step” below (or Ctrl+B): one backward() sends its gradient "
        steps += "from the loss back to the embeddings."
        return Said(f"{loss.text} {steps}", loss.quoted)
    first_key, first_norm = info.order[0]
    last_key, last_norm = info.order[-1]
    top = max(info.params, key=lambda p: p.ratio if math.isfinite(p.ratio) else -1.0)
    return q.said(
        loss.text,
        f"backward() reached {q('stages', len(info.order), 'int')} stages, from {first_key} "
        f"(gradient length {q('first_grad', first_norm)}) to {last_key} "
        f"({q('last_grad', last_norm)}).",
        f"The parameter whose gradient is largest against its own size is {top.name}: "
        f"{q('ratio', top.ratio)} (‖grad‖ / ‖weight‖).",
    )


def random_weights_note(model: LoadedModel) -> str:
    """What a step adds when the weights are the seeded random initialisation."""
    if not model.is_random:
        return ""
    return f"{model.label.capitalize()}, not trained ones: these numbers are noise."
