"""The window's life (issue 11): start-up with bad weights, what persists between
sessions, and closing while a job runs."""

import os

from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

PROMPT = "The cat sat on the mat"


def _open(qtbot, *argv):
    """The window as `gpt-explorer ARGV` opens it (not yet waited for)."""
    from explorer.app import build_window
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings

    window, session = build_window(gui_parser().parse_args(list(argv)), open_settings())
    qtbot.addWidget(window)
    return window, session


def test_bad_weights_at_start_fall_back_to_random_weights_with_the_error(qtbot, tmp_path):
    missing = tmp_path / "missing.safetensors"
    window, session = _open(qtbot, "--weights", str(missing), "--preset", "tiny", "--prompt", "Hi")
    qtbot.waitUntil(lambda: session.trace is not None, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    assert session.state.model.is_random and session.config.emb_dim == 32
    assert session.trace.token_ids.tolist() == session.tokenizer.encode("Hi")
    assert f"Could not load {missing}" in window.weights_banner.text.text()  # while it lasts
    assert "Random weights" in window.weights_banner.text.text()
    window.close()


def test_bad_weights_at_start_are_said_at_once_and_run_waits_for_the_stand_in(qtbot, tmp_path):
    missing = tmp_path / "missing.safetensors"
    window, session = _open(qtbot, "--weights", str(missing), "--preset", "tiny")
    qtbot.waitUntil(lambda: session.model is not None, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    assert "Using random weights instead" in window.message_bar.text()
    wait_for_run(qtbot, session, "Hi")
    window.close()


def test_a_remembered_prompt_waits_for_run_and_the_view_says_so(qtbot):
    window, session = _open(qtbot, "--preset", "tiny")
    qtbot.waitUntil(lambda: session.model is not None, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)  # (while the model loads, the view says so)
    assert window.stage_panel.placeholder.text().startswith("Type a prompt")
    window.prompt.set_text("remember me")
    window.close()
    again, session = _open(qtbot, "--preset", "tiny")
    qtbot.waitUntil(lambda: session.model is not None, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    assert session.trace is None
    assert again.stage_panel.placeholder.text().startswith("Press Run (Ctrl+Enter) to run")
    again.close()


def test_the_ablation_mode_is_remembered(qtbot):
    window, session = _open(qtbot, "--preset", "tiny")
    qtbot.waitUntil(lambda: session.model is not None, timeout=GUI_TIMEOUT_MS)
    window.actions_by_name["mode_mean"].trigger()
    window.close()
    again, session = _open(qtbot, "--preset", "tiny")
    qtbot.waitUntil(lambda: session.model is not None, timeout=GUI_TIMEOUT_MS)
    assert session.interventions.mode == "mean"
    assert again.actions_by_name["mode_mean"].isChecked()
    again.close()


def test_export_and_save_trace_remember_their_own_folders(window, qtbot, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    from explorer.ui.dialogs.export import ExportRequest

    exports, traces = tmp_path / "exports", tmp_path / "traces"
    exports.mkdir(), traces.mkdir()
    starts = []

    def save_to(parent, caption, start, filters):
        starts.append(start)
        return str(traces / "run.npz"), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_to)
    wait_for_run(qtbot, window.session, PROMPT)
    assert window.export(ExportRequest("head", exports, ("csv",)))
    window.on_save_trace()
    assert (traces / "run.npz").is_file()
    assert window.export_folder() == str(exports)  # Save trace did not move Export's folder
    window.on_save_trace()
    assert starts[1] == str(traces / "trace.npz")


def test_closing_while_weights_load_is_prompt_and_drops_the_load(window, qtbot, monkeypatch):
    import threading
    import time

    import explorer.session.session

    release = threading.Event()
    started = threading.Event()

    def stuck_load(*args):  # like initialising a large random model: it never asks to stop
        started.set()
        release.wait(30)
        raise RuntimeError("this load should have been dropped")

    monkeypatch.setattr(explorer.session.session, "load_job", stuck_load)
    session = window.session
    model = session.model
    session.load_weights(None, "gpt2-small")
    assert started.wait(10)
    begin = time.perf_counter()
    window.close()
    assert time.perf_counter() - begin < 2  # it waited 10 s
    release.set()
    assert session.runner.wait(10_000)
    qtbot.wait(100)  # the late failure arrives, and is dropped: no message, no exception
    assert session.model is model
    assert "should have been dropped" not in window.message_bar.text()


def test_the_app_exits_at_once_when_closed_during_a_load(tmp_path):
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    script = tmp_path / "close_while_loading.py"
    script.write_text(
        "import sys, time\n"
        "import explorer.app as app, explorer.session.session as session\n"
        "from PySide6.QtCore import QTimer\n"
        "session.load_job = lambda *args: time.sleep(600)\n"
        "build = app.build_window\n"
        "def closing_soon(args, settings):\n"
        "    window, s = build(args, settings)\n"
        "    QTimer.singleShot(300, window.close)\n"
        "    return window, s\n"
        "app.build_window = closing_soon\n"
        "sys.exit(app.main(['--preset', 'tiny']))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    env["GPT_EXPLORER_SETTINGS"] = str(tmp_path / "settings.ini")
    begin = time.perf_counter()
    result = subprocess.run([sys.executable, script], env=env, capture_output=True, timeout=300)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr
    assert time.perf_counter() - begin < 120  # not the ten minutes the load takes
    assert "Error" not in stderr
