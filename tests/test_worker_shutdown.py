"""A job that outlives its Runner (the window closed while it ran) ends without a word."""

import threading

import shiboken6

from explorer.session.worker import Runner


def test_a_job_that_ends_after_its_runner_is_gone_raises_nothing(qtbot, capfd):
    runner = Runner()
    started, release = threading.Event(), threading.Event()

    def stuck(ctx):
        started.set()
        release.wait(10)
        ctx.report(1.0, "done")
        return "late"

    results = []
    runner.submit("load", stuck, results.append, lambda exc, tb: results.append(exc))
    assert started.wait(5)
    runner.close()
    shiboken6.delete(runner._signals)  # what the interpreter's exit does to it
    release.set()
    assert runner.wait(5000)
    qtbot.wait(50)
    assert results == []
    assert "RuntimeError" not in capfd.readouterr().err
