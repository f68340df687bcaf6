"""The tour's steps at the two ends of the pipeline, written from the run's own numbers (no
Qt): how the prompt's text became its tokens (the BPE walk), and how the output head's logits
become the distribution the sampler draws from."""

from __future__ import annotations

import numpy as np

from explorer.state.tokens import prompt_tokens
from explorer.state.tour_text import Quotes, Said, TourContext, token_at
from gpt_core import get_tokenizer, next_token_distribution
from gpt_core.model.bpe import symbol_display
from gpt_core.model.tokenizer import display_bytes

EXAMPLE_TOP_K = 40  # the cut the greedy page shows as an example of sampling


def say_tokens(ctx: TourContext) -> Said:
    trace, t, q = ctx.trace, ctx.focus.query, Quotes()
    ids = trace.token_ids.tolist()
    tokens = prompt_tokens(ctx.state.ran_text or "", ctx.state.generated, ids)
    first = (
        f"GPT-2 reads bytes: the pre-tokenizer cuts the text into "
        f"{q('pieces', len(tokens.walk.pieces), 'int')} pieces (words with their leading "
        f"space, numbers, punctuation), and byte-pair encoding turns them into "
        f"{q('tokens', len(ids), 'int')} tokens."
    )
    index = tokens.piece_at(t)
    if index is None:  # a generated token: no text was walked for it
        return q.said(first, f"The last token, {token_at(trace, t)}, was generated, not read.")
    piece = tokens.walk.pieces[index]
    where = f"The piece “{display_bytes(piece.data)}”, where the last token stands, is "
    where += f"{q('bytes', len(piece.data), 'int')} bytes"
    if not piece.merges:
        return q.said(
            first,
            f"{where}: one byte-mapped symbol that is a token already, id "
            f"{q('id', ids[t], 'int')}. Click another piece to see its merges.",
        )
    merge = piece.merges[0]
    return q.said(
        first,
        f"{where}; each merge joins the adjacent pair with the lowest rank in vocab.bpe, first "
        f"“{symbol_display(merge.left)}” + “{symbol_display(merge.right)}” (rank "
        f"{q('rank', merge.rank, 'int')}), {q('merges', len(piece.merges), 'int')} merges in "
        f"all, until no pair is in the table.",
        f"Its last token is id {q('id', ids[t], 'int')} in encoder.json.",
    )


def say_sampling(ctx: TourContext) -> Said:
    trace, t, q = ctx.trace, ctx.focus.query, Quotes()
    settings, tokenizer = ctx.state.generation, get_tokenizer()
    logits = trace["logits/last"]  # [vocab]
    now = next_token_distribution(logits, settings.temperature, settings.top_k, settings.top_p)
    top = int(np.argmax(now.before))
    first = (
        f"A softmax turns the logits after {token_at(trace, t)} into probabilities: "
        f"“{tokenizer.display(top)}” gets {q('before_top', now.before[top], 'pct')}, and the "
        f"entropy is {q('entropy_before', now.entropy_before)} nats."
    )
    controls = "Move the temperature, top-k and top-p controls and watch the bars change."
    if now.greedy:
        warm = next_token_distribution(logits, 1.0, EXAMPLE_TOP_K, None)
        return q.said(
            first,
            "With temperature 0 (the Generate panel's setting now) sampling is greedy: it "
            "always takes that one token.",
            f"At temperature 1 with top-k {EXAMPLE_TOP_K} the sampler would draw from "
            f"{q('example_possible', warm.possible, 'int')} tokens, the top one at "
            f"{q('example_top', warm.probs.max(), 'pct')} once renormalised. {controls}",
        )
    cuts = [f"temperature {settings.temperature:g}"]
    cuts += [f"top-k {settings.top_k}"] if settings.top_k is not None else []
    cuts += [f"top-p {settings.top_p:g}"] if settings.top_p is not None else []
    return q.said(
        first,
        f"With the Generate panel's {', '.join(cuts)}, {q('possible', now.possible, 'int')} "
        f"of {trace.config.vocab_size:,} tokens remain possible, the top one at "
        f"{q('after_top', now.probs.max(), 'pct')}, and the entropy becomes "
        f"{q('entropy_after', now.entropy_after)} nats.",
        controls,
    )
