"""The Session's generation, one token at a time (a part of the Session class kept in its own
module): each token continues the run the views show, never logits of an older one."""

from __future__ import annotations

import numpy as np

from explorer.session.jobs.model_work import next_token
from explorer.state import app_state as st
from explorer.state.sampling import GenerationSettings, position_logits
from gpt_core import SamplingDistribution, next_token_distribution


class GenerationMixin:
    """Session methods for generating; they use the Session's state, run() and report()."""

    # (logits, settings, distribution) last computed: the output view and the Generate panel
    # both draw the last position's, and each move of a control redraws both.
    _last_distribution: tuple | None = None

    def sampling_distribution(self, position: int) -> SamplingDistribution | None:
        """The distribution the next token is drawn from at `position` of the run shown, with
        the settings now; None while that position's logits are being read. ValueError when
        they are not finite."""
        logits = position_logits(self.state, position, self.tokenizer.size)
        if logits is None:
            return None
        s, last = self.state.generation, self._last_distribution
        if last is not None and last[0] is logits and last[1] == s:
            return last[2]
        if not np.isfinite(logits).all():
            raise ValueError("The logits are not finite (NaN or Inf): no token can be drawn.")
        distribution = next_token_distribution(logits, s.temperature, s.top_k, s.top_p)
        self._last_distribution = (logits, s, distribution)
        return distribution

    def generated_text(self) -> str:
        return self.tokenizer.decode(self.state.generated)

    def shown_text(self) -> str:
        """The text of the run the views show (generated tokens included), "" before one."""
        trace = self.trace
        return "" if trace is None else self.tokenizer.decode(trace.token_ids.tolist())

    def set_generation(self, settings: GenerationSettings) -> None:
        self.update(st.with_generation_settings, settings)

    def generate_next(self) -> None:
        """Append the next token (greedy, or sampled with the settings) and run again."""
        trace = self.trace
        if trace is None:
            self.report("info", "Run a prompt first.")
            return
        # The token continues the run shown, which must be of the prompt and the tokens
        # generated so far (cropped to the context once they outgrow it).
        if self.state.result.key.token_ids != tuple(self.token_ids(crop=True)):
            waiting = self.runner.in_flight("run") is not None
            self.report(
                "info",
                "The run of the last token is still on its way; generate again when it is in."
                if waiting
                else "The views show an earlier prompt: run this one first (Ctrl+Enter).",
            )
            return
        generated = self.state.generated
        try:
            draw = next_token(trace, self.state.generation, len(generated))
        except ValueError as exc:
            self.report("error", str(exc))
            return
        self.update(st.with_drawn_token, draw)
        self.run(crop=True)  # at the context the run slides on to the last tokens

    def undo_generation(self) -> None:
        if self.state.generated:
            self.update(st.without_last_token)
            self.run(crop=True)

    def adopt_generated(self) -> None:
        """Make the generated text part of the prompt."""
        self.update(st.adopt_generated, self.generated_text())
