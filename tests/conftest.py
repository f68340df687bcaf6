import gc
import os
import subprocess
import sys
from pathlib import Path

# Before any Qt import: tests draw offscreen, and never read or write the user's settings.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from gpt_core import GPTConfig, get_tokenizer, load_model

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = [
    "tests.probe_fixtures",  # the probe tests' model, ids and trace
    "tests.trace_files",  # a good trace file, for the trace-file tests
]


def run_main(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`python main.py ARGS`, as a person runs it from the project folder."""
    result = subprocess.run(
        [sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="session")
def tokenizer():
    return get_tokenizer()


@pytest.fixture(scope="session")
def tiny_cfg() -> GPTConfig:
    return GPTConfig.preset("tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_cfg):
    """A seeded random tiny GPT; tests must leave it as they found it (test_probe checks)."""
    model, _ = load_model(None, tiny_cfg, seed=1)
    return model


@pytest.fixture
def prompt_ids(tokenizer):
    return tokenizer.encode("Every effort moves you forward, one small step at a time.")


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_EXPLORER_SETTINGS", str(tmp_path / "settings.ini"))


@pytest.fixture(autouse=True)
def hub_cache(tmp_path_factory, monkeypatch):
    """An empty Hugging Face cache of the test's own: what the person's cache holds must
    not change what a test sees."""
    import huggingface_hub.constants

    cache = tmp_path_factory.mktemp("hf-cache")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(autouse=True)
def _collect_cycles_between_tests():
    """The app turns Python's automatic cycle collection off (explorer/worker.py collects on
    the GUI thread while Qt runs); between tests no event loop runs, so collect here."""
    yield
    from explorer.session import worker

    if worker.gui_thread_collector is not None and not gc.isenabled():
        worker.gui_thread_collector.collect()  # by generation, as gc itself would have


@pytest.fixture(scope="session", autouse=True)
def _one_application_for_every_test(qapp):
    """The QApplication made first: a headless command run in-process makes a
    QGuiApplication when none exists, after which no window could be built."""
    return qapp


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="torch sees no CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


# ---- GUI fixtures (pytest-qt) ----
GUI_TIMEOUT_MS = 30_000


def wait_for_run(qtbot, session, prompt=None):
    """Run the prompt (or the current one) and wait until the new trace is in."""
    if prompt is not None:
        session.set_prompt(prompt)
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.run()
    wait_idle(qtbot, session)


def wait_idle(qtbot, session):
    qtbot.waitUntil(lambda: not session.runner.is_busy(), timeout=GUI_TIMEOUT_MS)


@pytest.fixture
def session(qtbot):
    """A Session holding the seeded tiny model, no window."""
    from explorer.session.session import Session

    s = Session()
    with qtbot.waitSignal(s.modelChanged, timeout=GUI_TIMEOUT_MS):
        s.load_weights(None, "tiny", seed=1)
    yield s
    s.shut_down(GUI_TIMEOUT_MS)


def _open_window(qtbot):
    """The main window as `gpt-explorer --preset tiny` opens it, model loaded."""
    from explorer.app import build_window
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings

    args = gui_parser().parse_args(["--preset", "tiny", "--device", "cpu", "--seed", "1"])
    win, s = build_window(args, open_settings())
    win.resize(1400, 900)
    win.show()
    qtbot.waitUntil(lambda: s.model is not None, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, s)
    return win


@pytest.fixture
def window(qtbot):
    """A fresh main window as `gpt-explorer --preset tiny` opens it, model loaded: for tests
    of start-up, settings, loading, closing, or anything a used window may have changed."""
    win = _open_window(qtbot)
    qtbot.addWidget(win)
    yield win
    win.close()


@pytest.fixture(scope="module")
def _module_window(qapp, request, tmp_path_factory):
    """One main window for a module's tests (see shared_window), with settings of its own;
    building one costs seconds, mostly pyqtgraph's plots."""
    from pytestqt.qtbot import QtBot

    with pytest.MonkeyPatch.context() as patch:
        settings = tmp_path_factory.mktemp("shared-window") / "settings.ini"
        patch.setenv("GPT_EXPLORER_SETTINGS", str(settings))
        win = _open_window(QtBot(request))
    yield win, win.session.model
    win.close()
    win.deleteLater()


@pytest.fixture
def shared_window(_module_window, qtbot):
    """The module's one window, put back where a test reads it from: the model loaded at
    start-up, nothing switched off, the first section, head 0 and the last position selected,
    the first tab shown, no message, its first size. What else a test changes (a view's choice, the prompt, a
    panel's settings) the next test sees: use `window` where a test needs a fresh one."""
    from gpt_core import Interventions

    win, model = _module_window
    session = win.session
    wait_idle(qtbot, session)
    assert session.model is model, "a test loaded other weights into the shared window"
    if session.interventions != Interventions():
        session.set_interventions(Interventions())
        wait_idle(qtbot, session)
    session.select_section(0)
    session.select_head(0)
    session.select_position(None)
    win.tabs.setCurrentIndex(0)
    win.message_bar.clear()
    win.resize(1400, 900)
    yield win
    wait_idle(qtbot, session)


@pytest.fixture
def open_sized_window(qtbot):
    """open_sized_window(config, width, height, prompt): the window on a screen of that size,
    with every dock open, `config`'s random model loaded and `prompt` run."""
    from PySide6.QtCore import QSize
    from PySide6.QtWidgets import QApplication

    from explorer.app import build_window
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings

    opened = []

    def open_(config, width: int, height: int, prompt: str):
        args = gui_parser().parse_args(["--preset", "tiny", "--device", "cpu", "--seed", "1"])
        window, session = build_window(args, open_settings())
        qtbot.addWidget(window)
        opened.append(window)
        window.fit_screen(QSize(width, height))
        window.show()
        qtbot.waitUntil(lambda: session.model is not None, timeout=GUI_TIMEOUT_MS)
        wait_idle(qtbot, session)
        with qtbot.waitSignal(session.modelChanged, timeout=GUI_TIMEOUT_MS):
            session.load_weights(None, config, seed=1)
        wait_idle(qtbot, session)
        window.resize(width, height)
        wait_for_run(qtbot, session, prompt)
        QApplication.processEvents()
        qtbot.wait(50)
        QApplication.processEvents()
        return window

    yield open_
    for window in opened:
        window.close()
