"""The window as a person uses it: type, run, step through the stages by keyboard, open a
head, export, and bad input that must leave the app usable with nothing lost."""

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDockWidget

from explorer.state.sampling import GenerationSettings
from tests.conftest import GUI_TIMEOUT_MS, wait_idle

PROMPT = "The cat sat on the mat. 🐈 <|endoftext|> Ünïcödé!"


def _run_typed(qtbot, window, text=PROMPT):
    """Type the prompt (QTest types only single UTF-16 units: the rest is pasted) and press
    Ctrl+Enter."""
    window.prompt.editor.clear()
    typable = text.isascii()
    if typable:
        qtbot.keyClicks(window.prompt.editor, text)
    else:
        window.prompt.editor.insertPlainText(text)
    with qtbot.waitSignal(window.session.traceChanged, timeout=GUI_TIMEOUT_MS):
        qtbot.keyClick(window.prompt.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, window.session)


# Tests that type, run and read share one window; those of start-up, bad input, loading,
# generation and settings have fresh ones.


def test_launch_says_the_weights_are_random(window):
    assert window.weights_banner.isVisible()
    assert "Random weights: they show how GPT-2 computes" in window.weights_banner.text.text()
    assert window.weights_banner.get_gpt2.text() == "Download GPT-2 small (≈ 548 MB)"
    assert "163,009,536" not in window.navigator.summary.text()  # the tiny model is loaded
    assert f"{window.session.state.model.counts.total:,}" in window.navigator.summary.text()


def test_typed_prompt_runs_with_ctrl_enter_and_fills_the_token_strip(shared_window, qtbot):
    window = shared_window
    _run_typed(qtbot, window)
    session = window.session
    ids = session.tokenizer.encode(PROMPT)
    assert session.trace.token_ids.tolist() == ids
    assert 50256 in ids  # <|endoftext|> typed in the prompt is the special token
    strip = window.prompt.strip
    assert strip.ids == ids and strip.tokens == list(session.trace.token_strings)
    assert "tokens" in window.prompt.count.text()
    assert "ms on CPU" in window.status_text.text()


def test_clicking_a_token_selects_that_position_everywhere(shared_window, qtbot):
    window = shared_window
    _run_typed(qtbot, window)
    strip = window.prompt.strip
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=strip.chip_rect(3).center())
    assert window.session.position == 3
    assert strip.selected == 3
    assert "position 3" in strip.describe(3) and "bytes" in strip.describe(3)


def test_stepping_through_every_stage_with_the_keyboard(shared_window, qtbot):
    window = shared_window
    _run_typed(qtbot, window)
    session = window.session
    window.stage_panel.setFocus()
    session.select_section(0)
    seen = []
    for index in range(len(session.sections)):
        assert session.selection.section == index
        step = session.section
        view = window.stage_panel.current_view()
        assert view.name == step.spec.view
        assert window.stage_panel.title.text() == step.title
        assert window.navigator.tree.currentItem() is window.navigator.section_items[index]
        if step.name == "attention":
            expected = session.trace.head_weights(step.layer, session.selection.head)
            assert np.array_equal(view.heatmap.matrix, expected)
        seen.append(step.name)
        qtbot.keyClick(window.stage_panel, Qt.Key.Key_Right)
    assert session.selection.section == len(session.sections) - 1  # stops at the end
    qtbot.keyClick(window.stage_panel, Qt.Key.Key_Left)
    assert session.selection.section == len(session.sections) - 2
    assert seen.count("attention") == session.config.n_layers


def test_page_keys_and_slider_jump_between_blocks(shared_window, qtbot):
    window = shared_window
    _run_typed(qtbot, window)
    session = window.session
    session.select_layer(0)
    assert session.section.name == "attention" and session.section.layer == 0
    window.stage_panel.setFocus()
    qtbot.keyClick(window.stage_panel, Qt.Key.Key_PageDown)
    assert (session.section.name, session.section.layer) == ("attention", 1)
    qtbot.keyClick(window.stage_panel, Qt.Key.Key_PageUp)
    assert (session.section.name, session.section.layer) == ("attention", 0)
    window.layer_slider.setValue(1)
    assert (session.section.name, session.section.layer) == ("attention", 1)
    assert window.layer_label.text().strip() == "1 / 1"


def test_opening_a_head_from_the_grid(shared_window, qtbot):
    window = shared_window
    _run_typed(qtbot, window)
    session = window.session
    session.select_layer(1)
    view = window.stage_panel.current_view()
    grid = view.grid
    box = grid.boxes[2]
    center = grid.mapFromScene(box.sceneBoundingRect().center())
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(center.x(), center.y()))
    assert session.selection.head == 2
    assert np.array_equal(view.heatmap.matrix, session.trace.head_weights(1, 2))
    assert "head 2" in view.heatmap.title_label.text
    assert np.array_equal(grid.images[3].image, session.trace.head_weights(1, 3))


def test_attention_hover_names_query_key_and_weight(shared_window, qtbot):
    window = shared_window
    _run_typed(qtbot, window)
    window.session.select_layer(0)
    view = window.stage_panel.current_view()
    text = view.heatmap.describe_cell(4, 2)
    strings = window.session.trace.token_strings
    weight = window.session.trace.head_weights(0, window.session.selection.head)[4, 2]
    assert f"query 4 “{strings[4]}”" in text and f"key 2 “{strings[2]}”" in text
    assert f"{weight:.6f}" in text


def test_empty_prompt_is_a_message(window, qtbot):
    window.prompt.set_text("   ")
    window.actions_by_name["run"].trigger()
    assert "The prompt is empty or only whitespace" in window.message_bar.text()
    assert window.session.trace is None
    _run_typed(qtbot, window, "still works")
    assert window.session.trace is not None


def test_too_long_prompt_offers_to_run_the_last_tokens_and_keeps_the_text(window, qtbot):
    session = window.session
    text = " word" * 2000
    window.prompt.set_text(text)
    window.actions_by_name["run"].trigger()
    assert "2,000 tokens" in window.message_bar.text()
    assert "at most 64" in window.message_bar.text()
    assert window.prompt.text() == text
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        window.message_bar.action_button.click()
    assert session.trace.n_tokens == 64
    assert window.prompt.text() == text
    qtbot.waitUntil(lambda: "2,000 / 64 tokens" in window.prompt.count.text())


def test_corrupt_weights_file_keeps_the_previous_model(window, qtbot, tmp_path):
    session = window.session
    _run_typed(qtbot, window, "before the load")
    model = session.model
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    session.load_weights(str(bad))
    wait_idle(qtbot, session)
    assert (
        "Could not load" in window.message_bar.text()
        and "broken.safetensors" in window.message_bar.text()
    )
    assert "previous model stays" in window.message_bar.text()
    assert session.model is model and session.trace is not None
    assert window.prompt.text() == "before the load"
    _run_typed(qtbot, window, "after the failed load")
    assert session.trace.n_tokens == len(session.tokenizer.encode("after the failed load"))


def test_weights_of_the_wrong_shape_keep_the_previous_model(window, qtbot, tmp_path):
    import torch

    session = window.session
    state = {k: v.clone() for k, v in session.model.state_dict().items()}
    state["pos_emb.weight"] = torch.zeros(10, 32)
    torch.save(state, tmp_path / "wrong.pth")
    model = session.model
    session.load_weights(str(tmp_path / "wrong.pth"), "tiny")
    wait_idle(qtbot, session)
    assert "pos_emb.weight has shape [10, 32]" in window.message_bar.text()
    assert session.model is model


def test_loading_good_weights_replaces_the_model_and_reruns(window, qtbot, tmp_path):
    from gpt_core import save_model
    from gpt_core.weights import random_model

    session = window.session
    _run_typed(qtbot, window, "a prompt")
    other = random_model(session.config, seed=9)
    path = save_model(other, tmp_path / "other.safetensors")
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.load_weights(str(path))
    wait_idle(qtbot, session)
    assert not window.weights_banner.isVisible()
    assert "other.safetensors" in window.navigator.summary.text()
    assert session.trace is not None and window.prompt.text() == "a prompt"


def test_cuda_asked_for_without_cuda_falls_back_with_a_message(qtbot):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from explorer.app import build_window
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings

    args = gui_parser().parse_args(["--preset", "tiny", "--device", "cuda"])
    win, session = build_window(args, open_settings())
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: session.model is not None, timeout=GUI_TIMEOUT_MS)
    assert "CUDA was asked for" in win.message_bar.text()
    assert session.device.type == "cpu"
    session.set_device("cuda")
    assert "CUDA was asked for" in win.message_bar.text()
    win.close()


def test_settings_persist_prompt_docks_geometry_and_device(qtbot):
    from explorer.app import build_window
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings

    args = gui_parser().parse_args(["--preset", "tiny"])
    win, session = build_window(args, open_settings())
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: session.model is not None, timeout=GUI_TIMEOUT_MS)
    win.prompt.set_text("remember me")
    win.findChild(QDockWidget, "dock_generation").hide()
    win.findChild(QDockWidget, "dock_effect").setFloating(True)
    geometry = win.saveGeometry()
    win.close()
    settings = open_settings()
    assert settings.value("window/geometry") == geometry
    again, session2 = build_window(args, settings)
    qtbot.addWidget(again)
    again.show()
    assert again.prompt.text() == "remember me"
    assert not again.findChild(QDockWidget, "dock_generation").isVisible()
    assert again.findChild(QDockWidget, "dock_effect").isFloating()
    assert session2.device.type == "cpu"
    qtbot.waitUntil(lambda: session2.model is not None, timeout=GUI_TIMEOUT_MS)
    assert session2.trace is None  # a remembered prompt is not run until asked
    again.close()


def test_prompt_option_runs_at_start(qtbot):
    from explorer.app import build_window
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings

    args = gui_parser().parse_args(["--preset", "tiny", "--prompt", "Hello, world"])
    win, session = build_window(args, open_settings())
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: session.trace is not None, timeout=GUI_TIMEOUT_MS)
    assert session.trace.token_ids.tolist() == [15496, 11, 995]
    win.close()


def test_generation_appends_and_undo_removes(window, qtbot):
    session = window.session
    _run_typed(qtbot, window, "Every effort moves you")
    greedy = int(session.trace["logits/topk_ids"][-1, 0])
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        window.actions_by_name["generate"].trigger()
    wait_idle(qtbot, session)
    assert session.state.generated == (greedy,)
    assert session.trace.token_ids.tolist()[-1] == greedy
    assert window.prompt.strip.marked == {session.trace.n_tokens - 1}
    assert window.prompt.text() == "Every effort moves you"
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        window.actions_by_name["undo_generate"].trigger()
    wait_idle(qtbot, session)
    assert session.state.generated == ()
    assert session.trace.token_ids.tolist() == session.tokenizer.encode("Every effort moves you")


def test_sampled_generation_is_reproducible_with_a_seed(window, qtbot):
    session = window.session
    panel = window.generation
    panel.controls.temperature.setValue(1.5)
    panel.controls.top_k.setValue(50)
    panel.controls.top_p.setValue(0.95)
    panel.seed.setValue(7)
    assert session.state.generation == GenerationSettings(1.5, 50, 7, 0.95)
    runs = []
    for _ in range(2):
        _run_typed(qtbot, window, "Every effort moves you")
        for _ in range(3):
            with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
                session.generate_next()
            wait_idle(qtbot, session)
        runs.append(list(session.state.generated))
        while session.state.generated:
            with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
                session.undo_generation()
            wait_idle(qtbot, session)
    assert runs[0] == runs[1] and len(runs[0]) == 3


def test_a_long_load_can_be_cancelled_and_the_model_stays(window, qtbot):
    session = window.session
    model = session.model
    session.load_weights(None, "gpt2-small")
    assert window.cancel_button.isVisibleTo(window)
    window.cancel_button.click()
    wait_idle(qtbot, session)
    assert "Loading cancelled" in window.message_bar.text()  # said once it has stopped
    assert session.model is model and session.config.emb_dim == 32
    assert not window.cancel_button.isVisibleTo(window)
