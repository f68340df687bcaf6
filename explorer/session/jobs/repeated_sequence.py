"""Opening one head on the repeated-sequence test (<|endoftext|>, then n random tokens twice):
the run is a job; its weights come back for the dialog, dropped if the model changed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from gpt_core import capture, stage_key


@dataclass(frozen=True, eq=False)
class RepeatedSequenceHead:
    layer: int
    head: int
    weights: np.ndarray  # [T, T] the head's attention weights on the repeated sequence
    labels: list[str]  # "position:token" of the repeated sequence
    repeat_length: int  # n: the second copy starts at position n + 1
    scores: dict[str, float]  # the head's induction and duplicate-token scores


class RepeatedSequenceJobs(QObject):
    ready = Signal(object)  # a RepeatedSequenceHead

    def __init__(self, session):
        super().__init__(session)
        self.session = session

    def show_head(self, layer: int, head: int) -> None:
        session = self.session
        model, loaded = session.model, session.state.model
        if model is None or not loaded.repeated_sequence_ids:
            session.report("info", "This model has no head-type scores (non-finite weights).")
            return
        ids, device = (
            list(loaded.repeated_sequence_ids),
            session.state.device,
        )  # read here, not on the worker

        def job(ctx) -> RepeatedSequenceHead:
            trace = capture(model, ids, device=device)
            weights = trace[stage_key("attn/weights", layer)][head]  # [T, T]
            scores = {
                name: float(values[layer, head]) for name, values in loaded.head_types.items()
            }
            return RepeatedSequenceHead(
                layer, head, weights, trace.position_labels, len(ids) // 2, scores
            )

        def done(result: RepeatedSequenceHead) -> None:
            if session.state.model is loaded:  # not another model's meanwhile
                self.ready.emit(result)

        session.submit("repeated_sequence", job, done)
