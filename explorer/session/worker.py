"""Model work off the GUI thread: one job at a time on a one-thread QThreadPool.

Jobs run one after another because they share the model (a run registers hooks on it).
Each job has a kind ("run", "load", ...); submitting a job of a kind cancels the pending
or running job of that kind (a new run supersedes a stale one), and results of a job that
was superseded are dropped. Signals are connected before any job starts.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThreadPool, QTimer, Signal

from gpt_core import Cancelled

Progress = Callable[[float | None, str], None]


class _JobSignals(QObject):
    finished = Signal(int, object)  # job id, result
    failed = Signal(int, object, str)  # job id, exception, formatted traceback
    progress = Signal(int, object, str)  # job id, fraction done (or None), message


@dataclass
class JobContext:
    """What a job function gets: a cancel check and a progress reporter."""

    cancelled: threading.Event = field(default_factory=threading.Event)
    report: Progress = lambda fraction, message: None

    def should_stop(self) -> bool:
        return self.cancelled.is_set()


class _Job(QRunnable):
    def __init__(self, job_id: int, fn: Callable[[JobContext], object], signals: _JobSignals):
        super().__init__()
        self.setAutoDelete(False)  # the Runner keeps it alive until it reports
        self.job_id = job_id
        self.fn = fn
        self.signals = signals
        self.context = JobContext(report=lambda f, m: self._tell(signals.progress, f, m))

    def run(self) -> None:
        try:
            result = self.fn(self.context)
        except BaseException as exc:
            self._tell(self.signals.failed, exc, traceback.format_exc())
        else:
            self._tell(self.signals.finished, result)

    def _tell(self, signal, *args) -> None:
        # "Signal source has been deleted": the app is closing and no one is listening.
        with contextlib.suppress(RuntimeError):
            signal.emit(self.job_id, *args)


@dataclass
class _Pending:
    job: _Job
    kind: str
    on_done: Callable[[object], None]
    on_error: Callable[[BaseException, str], None]
    on_progress: Progress | None
    label: str
    on_stopped: Callable[[], None] | None  # once a cancelled job has really ended
    tag: object  # what the job works on, for in_flight() to tell


GC_INTERVAL_MS = 500


class _GuiThreadCollector(QObject):
    """Python's cycle collector runs in whichever thread happens to allocate. On a worker
    it may free a dead widget's wrapper and run the widget's C++ destructor there, which
    deadlocks against the GUI thread (seen: ~QObject waiting for the GIL on the worker while
    the GUI thread, holding it, waits for that object's mutex). So automatic collection is
    off and this timer collects on the GUI thread, generation by generation as gc would
    (the scheme of pyqtgraph's GarbageCollector)."""

    def __init__(self, app: QCoreApplication):
        super().__init__(app)
        self.thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect)
        self.timer.start(GC_INTERVAL_MS)

    def collect(self) -> None:
        counts = gc.get_count()
        for generation in range(3):
            if counts[generation] <= self.thresholds[generation]:
                return
            gc.collect(generation)


gui_thread_collector: _GuiThreadCollector | None = None


def collect_garbage_on_the_gui_thread() -> None:
    """Install the collector once (call on the GUI thread, once a QApplication exists)."""
    global gui_thread_collector
    app = QCoreApplication.instance()
    if app is not None and gui_thread_collector is None:
        gui_thread_collector = _GuiThreadCollector(app)


class Runner(QObject):
    """Submit model work; callbacks come back on the GUI thread."""

    busyChanged = Signal(bool, str, str)  # busy, the kind of job submitted last, its label

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        collect_garbage_on_the_gui_thread()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _JobSignals()
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._signals.progress.connect(self._on_progress)
        self._jobs: dict[int, _Pending] = {}
        self._next_id = 1
        self._closed = False  # shut down: whatever still comes back is dropped

    def submit(
        self,
        kind: str,
        fn: Callable[[JobContext], object],
        on_done: Callable[[object], None],
        on_error: Callable[[BaseException, str], None],
        on_progress: Progress | None = None,
        label: str = "",
        on_stopped: Callable[[], None] | None = None,
        tag: object = None,
    ) -> int:
        """Run `fn` off the GUI thread. on_stopped is called when a cancelled run has ended
        (its result dropped), so a message can say so truthfully. `tag` says what the job
        works on (a run's key, a trace and position): in_flight() gives it back."""
        self.cancel(kind)
        job_id = self._next_id
        self._next_id += 1
        job = _Job(job_id, fn, self._signals)
        was_busy = bool(self._jobs)
        self._jobs[job_id] = _Pending(
            job, kind, on_done, on_error, on_progress, label, on_stopped, tag
        )
        self._pool.start(job)
        if not was_busy or label:
            self.busyChanged.emit(True, kind, label or kind)
        return job_id

    def cancel(self, kind: str) -> None:
        """Stop the job of this kind: drop it if it has not started, else ask it to stop."""
        for job_id, pending in list(self._jobs.items()):
            if pending.kind == kind:
                pending.job.context.cancelled.set()
                if self._pool.tryTake(pending.job):  # it never started
                    self._forget(job_id)
                    if pending.on_stopped is not None:
                        pending.on_stopped()

    def cancel_all(self) -> None:
        for kind in {pending.kind for pending in self._jobs.values()}:
            self.cancel(kind)

    def close(self) -> None:
        """Stop every job and drop whatever they still send (the window is closing, its
        widgets may be gone); a job that cannot stop is abandoned, not waited for."""
        self.cancel_all()
        self._closed = True

    def kinds(self) -> set[str]:
        """The kinds of the jobs submitted and not yet ended."""
        return {pending.kind for pending in self._jobs.values()}

    def is_busy(self) -> bool:
        return bool(self._jobs)

    def has_job(self, kind: str) -> bool:
        return any(pending.kind == kind for pending in self._jobs.values())

    def in_flight(self, kind: str) -> object | None:
        """The tag of the job of this kind that is running or waiting and not cancelled, so
        the one place that knows what is being computed is the runner (None: no such job,
        or it has no tag)."""
        for pending in self._jobs.values():
            if pending.kind == kind and not pending.job.context.should_stop():
                return pending.tag
        return None

    def wait(self, msecs: int = -1) -> bool:
        """Block until every job has finished (used when the window closes)."""
        return self._pool.waitForDone(msecs)

    def _take(self, job_id: int) -> _Pending | None:
        pending = self._jobs.get(job_id)
        if pending is None or self._closed:
            return None
        self._forget(job_id)
        if not pending.job.context.cancelled.is_set():
            return pending
        if pending.on_stopped is not None:
            pending.on_stopped()
        return None

    def _forget(self, job_id: int) -> None:
        self._jobs.pop(job_id, None)
        if not self._jobs:
            self.busyChanged.emit(False, "", "")

    def _on_finished(self, job_id: int, result: object) -> None:
        pending = self._take(job_id)
        if pending is not None:
            pending.on_done(result)

    def _on_failed(self, job_id: int, exc: BaseException, formatted: str) -> None:
        pending = self._take(job_id)
        if pending is not None and not isinstance(exc, Cancelled):
            pending.on_error(exc, formatted)

    def _on_progress(self, job_id: int, fraction: float | None, message: str) -> None:
        pending = self._jobs.get(job_id)
        if pending is not None and pending.on_progress is not None and not self._closed:
            pending.on_progress(fraction, message)
