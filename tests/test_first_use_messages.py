"""What the window says to a first-time user: the empty centre says the model is running
while it runs, an unchanged re-run says its result was reused (not "0 ms"), and a random
model's banner offers the trained GPT-2 of its own size."""

from types import SimpleNamespace

from PySide6.QtCore import QObject, Signal

from explorer.session.jobs.model_work import run_summary
from explorer.state.app_state import RunKey
from explorer.ui.panels.weights_menus import WeightsBanner
from gpt_core import GPTConfig, Interventions
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle


def test_the_empty_centre_says_the_prompt_is_running_while_it_runs(window, qtbot):
    session, placeholder = window.session, window.stage_panel.placeholder
    wait_idle(qtbot, session)
    window.prompt.set_text("Running now")
    assert placeholder.text().startswith("Press Run")
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.run()
        assert placeholder.text().startswith("Running the prompt")  # not "Press Run"
    wait_idle(qtbot, session)


def test_an_unchanged_rerun_says_it_reused_the_result(session, qtbot):
    said = []
    session.message.connect(lambda level, text: said.append((level, text)))
    wait_for_run(qtbot, session, "One two three four five")
    assert said[-1][0] == "status" and " ms on " in said[-1][1]
    wait_for_run(qtbot, session)  # the same tokens, model and switches
    assert said[-1] == (
        "status",
        "5 tokens · unchanged since the last run: its result is reused (nothing was recomputed)",
    )
    session.toggle_head(0, 0)  # a switch: the switched run is computed, the baseline reused
    qtbot.waitUntil(
        lambda: not session.state.result.key.interventions.is_empty, timeout=GUI_TIMEOUT_MS
    )
    wait_idle(qtbot, session)
    assert said[-1][1].endswith("(the unswitched run reused)") and " ms on " in said[-1][1]


def test_run_summary_counts_the_time_of_a_fresh_run():
    result = SimpleNamespace(key=SimpleNamespace(interventions=SimpleNamespace(is_empty=True)))
    result.seconds = 0.0123
    assert run_summary(5, result, False, "CPU") == "5 tokens · 12 ms on CPU"


def test_a_run_with_feature_switches_alone_is_not_called_unchanged():
    key = RunKey(0, "cpu", (1, 2, 3), Interventions(), features=SimpleNamespace())
    result = SimpleNamespace(key=key, seconds=0.0123)
    assert (
        run_summary(3, result, True, "CPU") == "3 tokens · 12 ms on CPU (the unswitched run reused)"
    )
    unswitched = SimpleNamespace(key=RunKey(0, "cpu", (1, 2, 3), Interventions()), seconds=0)
    assert "nothing was recomputed" in run_summary(3, unswitched, True, "CPU")


class _Session(QObject):
    """The little of a Session the banner reads: the model's state and its signal."""

    modelChanged = Signal()

    def __init__(self, config: GPTConfig):
        super().__init__()
        model = SimpleNamespace(config=config, is_random=True, instead_of="", non_finite={})
        self.state = SimpleNamespace(model=model)
        self.loaded = []

    def load_weights(self, name: str) -> None:
        self.loaded.append(name)


def test_the_banner_offers_the_trained_gpt2_of_the_size_in_use(qtbot):
    for preset, name, text in (
        ("gpt2-medium", "gpt2-medium", "Download GPT-2 medium (≈ 1,520 MB)"),
        ("gpt2-small", "gpt2", "Download GPT-2 small (≈ 548 MB)"),
        ("gpt2-xl", "gpt2-xl", "Download GPT-2 XL (≈ 6,430 MB)"),
        ("tiny", "gpt2", "Download GPT-2 small (≈ 548 MB)"),  # no such size on the hub
    ):
        session = _Session(GPTConfig.preset(preset))
        banner = WeightsBanner(session)
        qtbot.addWidget(banner)
        assert banner.get_gpt2.text() == text, preset
        banner.get_gpt2.click()
        assert session.loaded == [name]


def test_the_window_takes_its_prompt_from_a_file(tmp_path, monkeypatch, capsys):
    """`python main.py --prompt-file PATH` opens the window on the file's prompt, read by the
    commands' rules; a file that cannot be read is one error line and exit status 2."""
    import explorer.app as app

    opened = []
    monkeypatch.setattr(app, "run_gui", lambda args: opened.append(args) or 0)
    path = tmp_path / "prompt.txt"
    path.write_text("A prompt from a file, with a final newline\n", encoding="utf-8")
    assert app.main(["--prompt-file", str(path), "--preset", "tiny"]) == 0
    assert opened[-1].prompt == "A prompt from a file, with a final newline"
    for bad, says in (
        (tmp_path / "missing.txt", "cannot read the prompt file"),
        (tmp_path, "cannot read the prompt file"),
    ):
        assert app.main(["--prompt-file", str(bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], err
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    assert app.main(["--prompt-file", str(tmp_path / "latin1.txt")]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    assert len(opened) == 1


def test_a_load_cancelled_at_start_up_says_no_model_is_loaded(qtbot, monkeypatch):
    """Cancel during the first load: no "previous model stays loaded" (there is none), and
    the empty centre says how to load one, not "press Run"."""
    import time

    import explorer.session.jobs.model_work as model_work
    from explorer.app import build_window
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings
    from gpt_core import Cancelled

    def slow_load(source, config, *, seed, progress, cancel):
        progress(0.0, "initialising random weights: 0 of 7 parameters")
        while not cancel():
            time.sleep(0.01)
        raise Cancelled("initialisation cancelled")

    monkeypatch.setattr(model_work, "load_model", slow_load)
    args = gui_parser().parse_args(["--preset", "tiny", "--device", "cpu"])
    window, session = build_window(args, open_settings())
    qtbot.addWidget(window)
    window.show()
    placeholder = window.stage_panel.placeholder
    qtbot.waitUntil(window.cancel_button.isVisible, timeout=GUI_TIMEOUT_MS)
    assert placeholder.text() == "Loading the model…"
    window.cancel_button.click()
    wait_idle(qtbot, session)
    assert session.model is None
    assert "no model is loaded" in window.message_bar.text()
    assert "previous model" not in window.message_bar.text()
    assert window.status_text.text() == "Loading cancelled"  # not "Stopping: …"
    assert placeholder.text().startswith("No model is loaded")
    window.close()
