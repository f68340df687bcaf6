"""The Attribution tab's model work: every chosen method for the run on screen, off the GUI
thread and cancellable between batches; the result is kept only while it still explains
the run on screen with the same settings."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject

from explorer.session.jobs.model_work import feature_edits
from explorer.session.worker import JobContext
from explorer.state import analysis as an
from explorer.state.analysis import AttributionRun, AttributionSettings
from gpt_core.analysis.input_attribution import Explained, attribute


class InputAttributionJobs(QObject):
    def __init__(self, session):
        super().__init__(session)
        self.session = session

    def set_settings(self, settings: AttributionSettings) -> None:
        self.session.update(an.with_attribution_settings, settings)

    def run(self) -> None:
        """Attribute the selected position's prediction of the chosen target."""
        session = self.session
        state, model = session.state, session.model
        settings = state.attribution
        if model is None or state.trace is None:
            session.report("info", "Run a prompt first.")
            return
        if settings.target is None:
            session.report("warning", "Pick or type the target token first.")
            return
        if settings.foil == settings.target:
            session.report("warning", "The foil is the target: their difference is always 0.")
            return
        trace = state.trace
        interventions = trace.interventions  # the run explained, even while a rerun is due
        edits = feature_edits(model, state.result.key, state.result.key.device)
        explained = Explained(settings.target, settings.foil, state.position)
        ids = trace.token_ids.tolist()

        def job(ctx: JobContext) -> AttributionRun:
            start = time.perf_counter()
            result = attribute(
                model, ids, explained, settings.methods, steps=settings.steps,
                integration=settings.integration,
                baseline_token=settings.baseline_token, interventions=interventions,
                edits=edits,
                should_stop=ctx.should_stop,
                progress=lambda done, total: ctx.report(
                    done / total, f"Attributing: {done} of {total} runs through the model"
                ),
            )  # fmt: skip
            return AttributionRun(trace, settings, explained, result, time.perf_counter() - start)

        def done(run: AttributionRun) -> None:
            session.update(an.with_attribution_run, run)
            if an.current_attribution(session.state) is run:
                session.report("status", f"Attributed in {run.seconds:.1f} s")

        session.submit("attribution", job, done, session.progress.emit)
