"""The Sub-layer lens tab's model work: the lens at every sub-layer of the run on screen, read off
the GUI thread in chunks of positions, the visible ones first, each chunk applied to the
state as it arrives (the grid fills in while the rest is read)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal

from explorer.session.worker import JobContext
from explorer.state import analysis as an
from gpt_core import Cancelled, Trace
from gpt_core.analysis import sublayer_lens

CHUNK = 32  # positions per chunk after the visible ones: streams, yet batches


class SublayerLensJobs(QObject):
    # A chunk read by the worker: its trace, target and columns (queued to the GUI thread).
    _columns = Signal(object, object, object)

    def __init__(self, session):
        super().__init__(session)
        self.session = session
        self._columns.connect(self._apply_columns)
        session.traceChanged.connect(self._stop_if_stale)

    def set_target(self, target: int | None) -> None:
        self.session.update(an.with_sublayer_lens_target, target)

    def request(self, visible: Sequence[int]) -> None:
        """Read the positions not read yet, `visible` first; nothing if all are read."""
        session = self.session
        state, model = session.state, session.model
        if state.trace is None or model is None:
            return
        missing = an.sublayer_lens_columns_missing(state)
        first = [p for p in visible if 0 <= p < len(missing) and missing[p]]
        shown = set(first)
        rest = [p for p in range(len(missing)) if missing[p] and p not in shown]
        asked = (state.trace, state.sublayer_lens_target, tuple(first))
        running = session.runner.in_flight("sublayer_lens")
        if not first and not rest or asked == running:
            return
        if not first and running is not None and running[:2] == asked[:2]:
            return  # the job in flight reads the rest: starting over would read a chunk twice
        chunks = [first] if first else []
        chunks += [rest[i : i + CHUNK] for i in range(0, len(rest), CHUNK)]
        trace, target = state.trace, state.sublayer_lens_target

        def job(ctx: JobContext) -> None:
            for done, positions in enumerate(chunks):
                if ctx.should_stop():
                    raise Cancelled("the lens grid is no longer shown")
                ctx.report(done / len(chunks), f"Lens: {len(positions)} positions")
                self._columns.emit(trace, target, sublayer_lens(model, trace, target, positions))

        session.submit("sublayer_lens", job, lambda _: None, tag=asked)

    def _apply_columns(self, trace: Trace, target: int | None, part) -> None:
        # A chunk of a cancelled job is still right for its trace and target: keep it.
        self.session.update(an.with_sublayer_lens_columns, trace, target, part)

    def _stop_if_stale(self) -> None:
        asked = self.session.runner.in_flight("sublayer_lens")
        if asked is not None and asked[0] is not self.session.state.trace:
            self.session.runner.cancel("sublayer_lens")
