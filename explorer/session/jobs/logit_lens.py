"""The logit lens the output view shows: computed off the GUI thread when that view is
open and the lens at the selected position is missing, kept only while it still belongs
to the current trace and position."""

from __future__ import annotations

from PySide6.QtCore import QObject

from explorer.session.jobs.model_work import JOB_KINDS
from explorer.state import app_state as st
from gpt_core import LogitLens, Trace, logit_lens


class LensJobs(QObject):
    def __init__(self, session):
        super().__init__(session)
        self.session = session
        self._in_flight: tuple[Trace, int] | None = None  # (trace, position)

    def request_if_shown(self) -> None:
        session = self.session
        trace, position = session.state.trace, st.lens_wanted(session.state)
        if position is None or self._in_flight == (trace, position):
            return
        self._in_flight = (trace, position)
        model = session.model

        def done(lens: LogitLens) -> None:
            self._in_flight = None
            if session.state.position == lens.position:
                session._apply(st.with_lens(session.state, trace, lens))

        def failed(exc: BaseException, formatted: str) -> None:
            self._in_flight = None
            session._job_failed(exc, formatted)

        job = lambda ctx: logit_lens(model, trace, position)  # noqa: E731
        session.runner.submit("lens", job, done, failed, label=JOB_KINDS["lens"].label)
