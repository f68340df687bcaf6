"""Jobs whose results arrive after the state moved on, and how often a change redraws."""

import dataclasses

import pytest

from explorer.state.app_state import find_section
from explorer.ui.panels.effect import EffectPanel
from explorer.ui.views.attention import AttentionView
from explorer.ui.widgets.head_grid import HeadGrid
from gpt_core import GPTConfig, save_model
from gpt_core.weights import random_model
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

SHORT = "One two three"
LONG = "A much longer prompt, with many more tokens in it than the first one had at all."


def test_backward_pressed_while_a_new_prompt_runs_is_for_the_new_prompt(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, SHORT)
    session.set_prompt(LONG)
    session.run()  # still running when Backward is pressed
    session.run_backward()
    wait_idle(qtbot, session)
    n_long = len(session.tokenizer.encode(LONG))
    assert session.trace.n_tokens == n_long
    assert session.gradients is not None
    assert list(session.gradients.token_ids) == list(session.trace.token_ids)
    assert window.gradients.saliency.ids == list(session.trace.token_ids)


def test_run_pressed_while_a_new_model_loads_shows_the_new_model(window, qtbot, tmp_path):
    session = window.session
    bigger = dataclasses.replace(GPTConfig.preset("tiny"), n_layers=3)
    path = save_model(random_model(bigger, seed=3), tmp_path / "three_blocks.safetensors")
    session.set_prompt(SHORT)
    session.select_section(find_section(session.state, "attention", 1))
    session.load_weights(str(path))
    session.run()  # queued behind the load, with the model still in use
    wait_idle(qtbot, session)
    qtbot.waitUntil(lambda: session.trace is not None, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    assert session.config.n_layers == 3
    assert session.trace.config == session.config
    assert len(window.navigator.section_items) == len(session.sections)


def test_a_backward_step_of_other_switches_is_dropped(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, SHORT)
    shown = []  # whether each backward step shown was for the switches in force
    session.gradientsChanged.connect(
        lambda: shown.append(
            session.gradients is None or session.gradients.interventions == session.interventions
        )
    )
    session.run_backward()
    session.toggle_head(0, 1)  # the backward step under way is for the old switches
    wait_idle(qtbot, session)
    assert session.gradients is None and all(shown)
    assert session.trace.interventions == session.interventions


@pytest.fixture
def counted(window, qtbot, monkeypatch):
    """The window on block 1's attention, with calls to the expensive draws counted."""
    calls = {"view": 0, "grid": 0, "effect": 0}

    def counting(cls, name, what):
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            calls[what] += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    counting(AttentionView, "draw", "view")
    counting(HeadGrid, "set_layer", "grid")
    counting(EffectPanel, "draw", "effect")
    session = window.session
    wait_for_run(qtbot, session, LONG)
    session.select_section(find_section(session.state, "attention", 1))
    calls.update(view=0, grid=0, effect=0)
    return window, calls


def test_one_head_toggle_draws_each_view_once(counted, qtbot):
    window, calls = counted
    session = window.session
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.toggle_head(1, 2)
    wait_idle(qtbot, session)
    assert calls == {"view": 1, "grid": 1, "effect": 1}
    view = window.stage_panel.current_view()
    assert not view.head_boxes[2].isChecked()
    assert session.trace.interventions == session.interventions


def test_a_token_click_moves_the_marks_without_redrawing_the_heads(counted, qtbot):
    window, calls = counted
    session = window.session
    window.prompt.strip.positionClicked.emit(2)
    assert session.position == 2
    assert calls["view"] == 0 and calls["grid"] == 0
    assert window.stage_panel.current_view().heatmap.highlighted_row == 2


def test_a_head_click_redraws_the_large_head_not_the_grid(counted, qtbot):
    window, calls = counted
    session = window.session
    view = window.stage_panel.current_view()
    view.grid.headClicked.emit(3)
    assert session.selection.head == 3
    assert calls["grid"] == 0
    assert "head 3" in view.heatmap.title_label.text
    assert (view.heatmap.matrix == session.trace.head_weights(1, 3)).all()


def test_a_cancelled_run_does_not_hold_up_the_backward_step(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, SHORT)
    session.set_prompt(LONG)
    session.run()
    session.cancel("run")
    wait_idle(qtbot, session)
    with qtbot.waitSignal(session.gradientsChanged, timeout=GUI_TIMEOUT_MS):
        session.run_backward()  # for the prompt on screen, the short one
    assert list(session.gradients.token_ids) == list(session.trace.token_ids)
