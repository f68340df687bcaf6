"""The logit lens the output view shows: computed off the GUI thread when that view is
open and the lens at the selected position is missing, kept only while it still belongs
to the current trace and position."""

from __future__ import annotations

from PySide6.QtCore import QObject

from explorer.state import app_state as st
from gpt_core import LogitLens, logit_lens


class LogitLensJobs(QObject):
    def __init__(self, session):
        super().__init__(session)
        self.session = session

    def request_if_shown(self) -> None:
        session = self.session
        trace, position = session.state.trace, st.logit_lens_wanted(session.state)
        if position is None or session.runner.in_flight("logit_lens") == (trace, position):
            return
        model = session.model

        def done(lens: LogitLens) -> None:
            if session.state.position == lens.position:
                session.update(st.with_logit_lens, trace, lens)

        job = lambda ctx: logit_lens(model, trace, position)  # noqa: E731
        session.submit("logit_lens", job, done, tag=(trace, position))
