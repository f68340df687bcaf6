"""Model work runs off the GUI thread, one job at a time; a new job supersedes a stale one."""

import threading
import time

from explorer.session.worker import Runner


def test_jobs_run_off_the_gui_thread_and_report_back_on_it(qtbot):
    runner = Runner()
    seen = {}

    def job(ctx):
        seen["job_thread"] = threading.current_thread()
        return 42

    def done(result):
        seen["result"] = result
        seen["done_thread"] = threading.current_thread()

    with qtbot.waitSignal(runner.busyChanged, check_params_cb=lambda busy, *_: not busy):
        runner.submit("run", job, done, lambda exc, tb: None)
    assert seen["result"] == 42
    assert seen["job_thread"] is not threading.main_thread()
    assert seen["done_thread"] is threading.main_thread()


def test_a_new_job_supersedes_the_running_one_of_its_kind(qtbot):
    runner = Runner()
    started = threading.Event()
    results, errors = [], []

    def slow(ctx):
        started.set()
        while not ctx.should_stop():
            time.sleep(0.005)
        return "stale"

    runner.submit("run", slow, results.append, lambda e, tb: errors.append(e))
    assert started.wait(5)
    with qtbot.waitSignal(runner.busyChanged, check_params_cb=lambda busy, *_: not busy):
        runner.submit("run", lambda ctx: "fresh", results.append, lambda e, tb: errors.append(e))
    assert results == ["fresh"] and errors == []


def test_a_pending_job_of_another_kind_still_runs(qtbot):
    runner = Runner()
    results = []
    with qtbot.waitSignal(runner.busyChanged, check_params_cb=lambda busy, *_: not busy):
        runner.submit("run", lambda ctx: "run", results.append, lambda e, tb: None)
        runner.submit("lens", lambda ctx: "lens", results.append, lambda e, tb: None)
    assert results == ["run", "lens"]


def test_failures_come_back_as_errors_with_the_exception(qtbot):
    runner = Runner()
    errors = []

    def boom(ctx):
        raise ValueError("bad input")

    with qtbot.waitSignal(runner.busyChanged, check_params_cb=lambda busy, *_: not busy):
        runner.submit("run", boom, lambda r: None, lambda e, tb: errors.append((e, tb)))
    [(exc, formatted)] = errors
    assert isinstance(exc, ValueError) and "bad input" in formatted


def test_the_gui_thread_stays_responsive_during_a_long_job(qtbot):
    runner = Runner()
    ticks = []
    from PySide6.QtCore import QTimer

    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    with qtbot.waitSignal(
        runner.busyChanged, check_params_cb=lambda busy, *_: not busy, timeout=10_000
    ):
        runner.submit("run", lambda ctx: time.sleep(0.5), lambda r: None, lambda e, tb: None)
    timer.stop()
    assert len(ticks) >= 10  # the event loop kept turning while the job slept


def test_cycles_are_collected_on_the_gui_thread_not_in_a_job(qtbot):
    import gc
    import threading

    from explorer.session.worker import GC_INTERVAL_MS

    runner = Runner()
    assert not gc.isenabled()  # a worker's allocations must not run the collector
    freed_on = []

    class Cycle:
        def __init__(self):
            self.me = self

        def __del__(self):
            freed_on.append(threading.current_thread() is threading.main_thread())

    Cycle()  # garbage only the cycle collector can free

    def allocate(ctx):
        return len([[i] for i in range(200_000)])  # far past gc's first threshold

    done = []
    runner.submit("run", allocate, done.append, lambda *a: None)
    qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    assert freed_on in ([], [True])  # not freed by the job's thread
    alive = [[i] for i in range(5_000)]  # the GUI thread's own allocations, past a threshold
    qtbot.waitUntil(lambda: bool(freed_on), timeout=4 * GC_INTERVAL_MS + 2000)
    assert freed_on == [True] and len(alive) == 5_000
    runner.close()
