"""Weights holding NaN or Inf: the load says how many and where and keeps the model, every
view draws them without raising, generation refuses, exports keep NaN as NaN."""

import numpy as np
import pytest
import torch

from gpt_core import PromptError, generate, load_model, pick_next_token, save_model
from gpt_core.weights import non_finite_parameters
from tests.conftest import GUI_TIMEOUT_MS, wait_idle


@pytest.fixture
def broken_weights(tmp_path):
    model, _ = load_model(None, "tiny", seed=3)
    with torch.no_grad():
        model.trf_blocks[1].ff.layers[0].weight[5, :3] = float("nan")
        model.trf_blocks[1].att.W_value.weight[0, 0] = float("inf")
    return save_model(model, tmp_path / "broken.safetensors")


def test_non_finite_values_are_counted_by_tensor(broken_weights):
    model, _ = load_model(broken_weights)
    assert non_finite_parameters(model) == {
        "trf_blocks.1.att.W_value.weight": 1,
        "trf_blocks.1.ff.layers.0.weight": 3,
    }


def test_generation_refuses_non_finite_logits():
    with pytest.raises(PromptError, match="not finite"):
        pick_next_token(torch.tensor([0.0, float("nan"), 1.0]))
    model, _ = load_model(None, "tiny")
    with torch.no_grad():
        model.final_norm.scale.fill_(float("nan"))
    with pytest.raises(PromptError, match="not finite"):
        generate(model, [1, 2, 3], 2)


def test_every_view_draws_non_finite_weights(window, qtbot, broken_weights, tmp_path):
    session = window.session
    with qtbot.waitSignal(session.modelChanged, timeout=GUI_TIMEOUT_MS):
        session.load_weights(str(broken_weights))
    assert "non-finite" in window.message_bar.text()
    assert "trf_blocks.1.ff.layers.0.weight" in window.message_bar.text()
    banner = window.weights_banner
    assert "Non-finite weights" in banner.text.text() and banner.isVisible()
    session.set_prompt("The cat sat on the mat")
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.run()
    wait_idle(qtbot, session)
    trace = session.trace
    assert not np.isfinite(trace["logits/last"]).any()
    for index in range(len(session.sections)):  # pytest-qt fails the test on any exception
        session.select_section(index)
        wait_idle(qtbot, session)
    view = window.stage_panel.view_for("residual")
    session.select_section(len(session.sections) - 3)  # block 1's output: all NaN
    heatmap = window.stage_panel.current_view().heatmap
    assert heatmap.non_finite_cells() == trace["blocks/1/out"].size
    assert heatmap.non_finite.isVisible()  # the magenta overlay is drawn
    assert "NaN" in heatmap.title_label.text
    assert view is not None
    session.select_section(len(session.sections) - 1)
    wait_idle(qtbot, session)
    output = window.stage_panel.current_view()
    assert "not finite" in output.summary.text()
    session.generate_next()
    assert "not finite" in window.message_bar.text()
    window.tabs.setCurrentWidget(window.gradients)
    window.gradients.run_backward()
    wait_idle(qtbot, session)
    written = window.export(
        type(
            "Request",
            (),
            {"what": "head", "folder": tmp_path, "formats": ("npy", "csv", "png"), "filename": ""},
        )()
    )
    assert written
    exported = np.load(tmp_path / "attention_L1_H0.npy")
    assert np.array_equal(np.isnan(exported), np.isnan(trace.head_weights(1, 0)))


def test_the_command_line_warns_and_keeps_nan_as_nan(broken_weights, tmp_path):
    from tests.conftest import run_main

    out = tmp_path / "broken.npz"
    result = run_main(
        "trace", "--weights", str(broken_weights), "--prompt", "The cat sat", "--out", str(out)
    )
    assert "warning: the weights hold NaN or Inf values in trf_blocks.1.att.W_value.weight (1)" in (
        result.stderr
    )
    with np.load(out) as trace:
        assert np.isfinite(trace["blocks/0/out"]).all()
        assert np.isnan(trace["blocks/1/out"]).all()  # NaN stays NaN in the file
