"""The tour's steps at the two ends of the pipeline, written from the run's own numbers (no
Qt): how the output head's logits become the distribution the sampler draws from."""

from __future__ import annotations

import numpy as np

from explorer.state.tour_text import Quotes, Said, TourContext, token_at
from gpt_core import get_tokenizer, next_token_distribution

EXAMPLE_TOP_K = 40  # the cut the greedy page shows as an example of sampling


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
