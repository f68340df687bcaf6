"""The Lens tab's model work: the lens at every sub-layer of the run on screen, read off
the GUI thread in chunks of positions, the visible ones first, each chunk applied to the
state as it arrives (the grid fills in while the rest is read)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal

from explorer.session.jobs.model_work import JOB_KINDS
from explorer.session.worker import JobContext
from explorer.state import analysis as an
from gpt_core import Cancelled, Trace
from gpt_core.analysis import sublayer_lens

CHUNK = 32  # positions per chunk after the visible ones: streams, yet batches


class LensGridJobs(QObject):
    # A chunk read by the worker: its trace, target and columns (queued to the GUI thread).
    _columns = Signal(object, object, object)

    def __init__(self, session):
        super().__init__(session)
        self.session = session
        self._asked: tuple | None = None  # (trace, target, visible) of the job in flight
        self._columns.connect(self._apply_columns)
        session.traceChanged.connect(self._stop_if_stale)

    def set_target(self, target: int | None) -> None:
        self.session._apply(an.with_lens_target(self.session.state, target))

    def request(self, visible: Sequence[int]) -> None:
        """Read the positions not read yet, `visible` first; nothing if all are read."""
        session = self.session
        state, model = session.state, session.model
        if state.trace is None or model is None:
            return
        missing = an.lens_columns_missing(state)
        first = [p for p in visible if 0 <= p < len(missing) and missing[p]]
        shown = set(first)
        rest = [p for p in range(len(missing)) if missing[p] and p not in shown]
        asked = (state.trace, state.lens_target, tuple(first))
        if not first and not rest or (asked == self._asked and session.runner.has_job("lens_grid")):
            return
        self._asked = asked
        chunks = [first] if first else []
        chunks += [rest[i : i + CHUNK] for i in range(0, len(rest), CHUNK)]
        trace, target = state.trace, state.lens_target

        def job(ctx: JobContext) -> None:
            for done, positions in enumerate(chunks):
                if ctx.should_stop():
                    raise Cancelled("the lens grid is no longer shown")
                ctx.report(done / len(chunks), f"Lens: {len(positions)} positions")
                self._columns.emit(trace, target, sublayer_lens(model, trace, target, positions))

        def done(_) -> None:
            self._asked = None

        def failed(exc: BaseException, formatted: str) -> None:
            self._asked = None
            session._job_failed(exc, formatted)

        session.runner.submit(
            "lens_grid", job, done, failed, label=JOB_KINDS["lens_grid"].label,
            on_stopped=lambda: setattr(self, "_asked", None),
        )  # fmt: skip

    def _apply_columns(self, trace: Trace, target: int | None, part) -> None:
        # A chunk of a cancelled job is still right for its trace and target: keep it.
        self.session._apply(an.with_lens_columns(self.session.state, trace, target, part))

    def _stop_if_stale(self) -> None:
        if self._asked is not None and self._asked[0] is not self.session.state.trace:
            self.session.runner.cancel("lens_grid")
