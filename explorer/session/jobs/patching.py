"""The Patching tab's model work: the Session's state holds the settings and the result;
this runs the experiment off the GUI thread, streams each sweep's rows as they arrive and
drops a result whose model or settings have changed meanwhile."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QObject, Signal

from explorer.session.worker import JobContext
from explorer.state import app_state as st
from explorer.state.app_state import PatchRun, PatchSettings
from gpt_core.analysis.patching import PatchError, Receiver, metric_from_text, patch
from gpt_core.model import GPTModel


class PatchingJobs(QObject):
    progress = Signal(int, int)  # cells done, cells in all
    partial = Signal(str, object)  # sweep, its array so far (NaN where not yet run)
    # The worker's reports, tagged with their run's serial (queued to the GUI thread).
    _progress = Signal(int, int, int)
    _partial = Signal(int, str, object)

    def __init__(self, session):
        super().__init__(session)
        self.session = session
        self._runs_started = 0  # numbers each run: what a cancelled or older run sends is dropped
        self._progress.connect(self._pass_progress)
        self._partial.connect(self._pass_partial)

    def _pass_progress(self, serial: int, done: int, total: int) -> None:
        if serial == self.session.runner.in_flight("patch"):
            self.progress.emit(done, total)

    def _pass_partial(self, serial: int, name: str, values) -> None:
        if serial == self.session.runner.in_flight("patch"):
            self.partial.emit(name, values)

    def set_settings(self, settings: PatchSettings) -> None:
        """New settings; a sweep running for the old ones is stopped, so none of its rows
        is drawn under the new prompts."""
        if settings != self.session.state.patching:
            self.session.cancel("patch")
        self.session.update(st.with_patch_settings, settings)

    def use_prompt_as_clean(self) -> None:
        """The prompt box's text becomes the clean prompt."""
        settings = self.session.state.patching
        self.set_settings(replace(settings, clean_text=self.session.state.prompt_text))

    def corrupt_token(self, position: int, text: str) -> None:
        """The corrupted prompt: the clean one with the token at `position` replaced by
        `text`, which must be one token."""
        session, settings = self.session, self.session.state.patching
        tokenizer = session.tokenizer
        try:
            ids = tokenizer.encode(settings.clean_text)
            if not 0 <= position < len(ids):
                raise PatchError(f"position {position} is not in the clean prompt")
            ids[position] = tokenizer.single_id(text, "the replacement")
        except ValueError as exc:
            session.report("warning", str(exc))
            return
        self.set_settings(replace(settings, corrupted_text=tokenizer.decode(ids)))

    def run(self) -> None:
        session = self.session
        model, settings = session.model, session.state.patching
        if model is None:
            session.report("info", "The model is still loading.")
            return
        serial = session.state.model.serial
        device = session.state.device
        self._runs_started += 1
        run_serial = self._runs_started

        def job(ctx: JobContext) -> PatchRun:
            reports = (
                lambda done, total: self._progress.emit(run_serial, done, total),
                lambda name, values: self._partial.emit(run_serial, name, np.array(values)),
            )
            return patch_job(model, serial, device, settings, ctx, reports)

        def done(run: PatchRun) -> None:
            session.update(st.with_patch_run, run)
            if session.state.patch_run is not run:
                return  # made for other settings or another model: dropped
            result = run.result
            session.report(
                "status",
                f"Patching: clean {result.clean_value:.4f}, corrupted "
                f"{result.corrupted_value:.4f} · {run.seconds:.1f} s",
            )

        session.submit("patch", job, done, tag=run_serial)


def patch_job(
    model: GPTModel, serial: int, device: str, settings: PatchSettings, ctx: JobContext, reports
) -> PatchRun:
    """Read the settings, pick the default tokens, run every sweep."""
    start = time.perf_counter()
    clean, corrupted, metric = metric_from_text(
        model,
        settings.clean_text,
        settings.corrupted_text,
        settings.metric,
        settings.answer,
        settings.distractor,
        settings.position,
        device,
    )
    result = patch(
        model,
        clean,
        corrupted,
        metric,
        settings.sweeps,
        method=settings.method,
        direction=settings.direction,
        receiver=Receiver.parse(settings.receiver) if settings.receiver else None,
        device=device,
        progress=reports[0],
        on_partial=reports[1],
        should_stop=ctx.should_stop,
    )
    return PatchRun(serial, settings, result, time.perf_counter() - start)
