"""Opening one head on the head-type probe (<|endoftext|>, then n random tokens twice):
the run is a job; its weights come back for the dialog, dropped if the model changed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from explorer.session.jobs.model_work import JOB_KINDS
from gpt_core import capture, stage_key


@dataclass(frozen=True, eq=False)
class ProbeHead:
    layer: int
    head: int
    weights: np.ndarray  # [T, T] the head's attention weights on the probe
    labels: list[str]  # "position:token" of the probe
    repeat_length: int  # n: the second copy starts at position n + 1
    scores: dict[str, float]  # the head's induction and duplicate-token scores


class ProbeJobs(QObject):
    ready = Signal(object)  # a ProbeHead

    def __init__(self, session):
        super().__init__(session)
        self.session = session

    def show_head(self, layer: int, head: int) -> None:
        session = self.session
        model, loaded = session.model, session.state.model
        if model is None or not loaded.probe_ids:
            session.report("info", "This model has no head-type scores (non-finite weights).")
            return
        ids = list(loaded.probe_ids)

        def job(ctx) -> ProbeHead:
            trace = capture(model, ids, device=session.state.device)
            weights = trace[stage_key("attn/weights", layer)][head]  # [T, T]
            scores = {
                name: float(values[layer, head]) for name, values in loaded.head_types.items()
            }
            return ProbeHead(layer, head, weights, trace.position_labels, len(ids) // 2, scores)

        def done(result: ProbeHead) -> None:
            if session.state.model is loaded:  # not another model's meanwhile
                self.ready.emit(result)

        label = JOB_KINDS["probe"].label
        session.runner.submit("probe", job, done, session._job_failed, label=label)
