"""A settings file can hold anything: a junk value (an int, a byte array) where a string or
a list of strings belongs is ignored, and the setting works again from the next write."""

import pytest
from PySide6.QtCore import QByteArray

from explorer.ui.settings import open_settings, read_choice, read_text, read_texts
from gpt_core import load_model, save_model
from tests.conftest import GUI_TIMEOUT_MS, wait_idle

JUNK = [5, QByteArray(b"\x00\xff junk"), 2.5, True]


@pytest.mark.parametrize("junk", JUNK, ids=["int", "bytes", "float", "bool"])
def test_every_reader_gives_the_default_for_junk(junk):
    settings = open_settings()
    settings.setValue("key", junk)
    assert read_text(settings, "key", "default") == "default"
    assert read_texts(settings, "key") == []
    assert read_choice(settings, "key", ("zero", "mean"), "zero") == "zero"
    settings.setValue("key", ["a", 3, "b"])
    assert read_texts(settings, "key") == ["a", "b"]


@pytest.mark.parametrize("junk", JUNK[:2], ids=["int", "bytes"])
def test_recent_weights_survive_a_junk_setting(window, qtbot, tmp_path, junk):
    menus = window.weights_menus
    menus.settings.setValue("weights/recent", junk)
    menus.fill_recent()  # old: TypeError, 'int' object is not iterable
    assert menus.recent() == []
    model, _ = load_model(None, "tiny", seed=7)
    path = str(save_model(model, tmp_path / "w.safetensors"))
    with qtbot.waitSignal(window.session.modelChanged, timeout=GUI_TIMEOUT_MS):
        window.session.load_weights(path)
    wait_idle(qtbot, window.session)
    assert menus.recent() == [window.session.state.model.label]


def test_the_window_opens_over_junk_settings(qtbot):
    from explorer.app import build_window
    from explorer.commands.parser import gui_parser

    settings = open_settings()
    for key in ("prompt/text", "model/device", "model/ablation_mode", "export/folder"):
        settings.setValue(key, 7)
    args = gui_parser().parse_args(["--preset", "tiny", "--seed", "1"])
    window, session = build_window(args, settings)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: session.model is not None, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    assert window.export_folder() != "7"
    window.close()
