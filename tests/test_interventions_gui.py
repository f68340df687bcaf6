"""Switching heads and blocks off from the window, and the backward-step view."""

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from explorer.state.app_state import find_section, section_of_stage
from explorer.ui.panels.effect import format_number, format_signed
from gpt_core import Interventions, backward_step, capture, compare
from tests.conftest import GUI_TIMEOUT_MS, run_main, wait_for_run, wait_idle

PROMPT = "The quick brown fox jumps over the lazy dog because it was in a hurry"


@pytest.fixture
def ran(shared_window, qtbot):
    """The module's window with PROMPT run and the backward step's loss the whole prompt's."""
    window = shared_window
    window.gradients.whole_prompt.setChecked(True)
    window.gradients.sgd.setChecked(False)
    window.prompt.set_text(PROMPT)
    wait_for_run(qtbot, window.session)
    return window


def _wait_run(qtbot, session, action):
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        action()
    wait_idle(qtbot, session)


def _expected(session, interventions):
    ids = session.trace.token_ids.tolist()
    baseline = capture(session.model, ids)
    other = capture(
        session.model, ids, interventions, track_token_ids=baseline["logits/topk_ids"][:, 0]
    )
    return baseline, other, compare(baseline, other)


def _assert_figures_match(window, expected):
    session, effect = window.session, window.effect
    position = session.position
    comparison = session.result.comparison
    assert comparison.delta_loss == pytest.approx(expected.delta_loss, abs=1e-9)
    assert comparison.kl_last == pytest.approx(expected.kl_last, rel=1e-9, abs=1e-12)
    assert np.allclose(comparison.pred_prob_after, expected.pred_prob_after, rtol=0, atol=1e-12)
    assert effect.delta_loss.text() == format_signed(expected.delta_loss)
    delta_pred = expected.pred_prob_after[position] - expected.pred_prob_before[position]
    assert effect.delta_pred.text().startswith(format_signed(delta_pred))
    assert effect.kl.text() == f"{format_number(expected.kl_last)} nats"
    display = session.tokenizer.display
    before_ids = session.result.baseline["logits/topk_ids"][position]
    after_ids = session.trace["logits/topk_ids"][position]
    for r in range(effect.table.rowCount()):
        assert effect.table.item(r, 0).text() == display(int(before_ids[r]))
        assert effect.table.item(r, 2).text() == display(int(after_ids[r]))


def test_unticking_a_head_reruns_and_the_figures_equal_compare(ran, qtbot):
    window, session = ran, ran.session
    session.select_layer(1)
    view = window.stage_panel.current_view()
    _wait_run(qtbot, session, lambda: view.head_boxes[2].setChecked(False))
    assert session.interventions == Interventions({(1, 2)})
    _, other, expected = _expected(session, Interventions({(1, 2)}))
    assert np.array_equal(session.trace["logits/last"], other["logits/last"])
    _assert_figures_match(window, expected)
    # marked everywhere it appears
    assert not view.head_boxes[2].isChecked()
    assert "off" in view.grid.titles[2].text
    assert "switched off" in view.heatmap.title_label.text or session.selection.head != 2
    assert view._off_marks.data["x"].tolist() == [2.5] and view._off_marks.data["y"].tolist() == [
        1.5
    ]
    attention_item = window.navigator.section_items[
        find_section(window.session.state, "attention", 1)
    ]
    assert "1 off" in attention_item.text(0)
    assert "L1.H2" in window.effect.switched_off.text()


def test_ctrl_click_in_the_overview_switches_a_head(ran, qtbot):
    window, session = ran, ran.session
    session.select_layer(0)
    view = window.stage_panel.current_view()
    overview = view.overview
    center = overview.plot.getViewBox().mapViewToScene(pg_point(3.5, 0.5))
    local = overview.mapFromScene(center)
    _wait_run(
        qtbot,
        session,
        lambda: qtbot.mouseClick(
            overview.viewport(),
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.ControlModifier,
            local,
        ),
    )
    assert session.interventions.ablate_heads == {(0, 3)}


def pg_point(x, y):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_unticking_a_block_in_the_navigator_skips_it(ran, qtbot):
    window, session = ran, ran.session
    block = window.navigator.block_items[0]
    _wait_run(qtbot, session, lambda: block.setCheckState(0, Qt.CheckState.Unchecked))
    assert session.interventions == Interventions(skip_layers={0})
    _, other, expected = _expected(session, Interventions(skip_layers={0}))
    assert np.array_equal(session.trace["blocks/0/out"], session.trace["embeddings/sum"])
    _assert_figures_match(window, expected)
    assert "skipped" in block.text(0)
    session.select_section(find_section(session.state, "ff", 0))
    assert window.stage_panel.notice.isVisibleTo(window.stage_panel)
    assert "switched off" in window.stage_panel.notice.text()


def test_mean_mode_and_restore_all_bring_back_the_baseline_bit_for_bit(ran, qtbot):
    window, session = ran, ran.session
    baseline = session.trace
    _wait_run(qtbot, session, lambda: session.toggle_head(0, 0))
    _wait_run(qtbot, session, lambda: window.actions_by_name["mode_mean"].trigger())
    assert session.interventions == Interventions({(0, 0)}, mode="mean")
    _, _, expected = _expected(session, Interventions({(0, 0)}, mode="mean"))
    _assert_figures_match(window, expected)
    _wait_run(qtbot, session, window.effect.restore.click)
    assert session.interventions.is_empty and session.result.comparison is None
    for key in baseline:
        assert np.array_equal(session.trace[key], baseline[key]), key
    assert window.effect.delta_loss.text() == "—"


def test_headless_export_with_ablate_matches_the_gui(ran, qtbot, tmp_path):
    session = ran.session
    _wait_run(qtbot, session, lambda: session.toggle_head(0, 1))
    _wait_run(qtbot, session, lambda: session.toggle_layer(1))
    options = "--format npy --layer 1 --head 3 --ablate 0.1 --skip 1 --preset tiny --seed 1"
    run_main("export", "--prompt", PROMPT, "--out", str(tmp_path), *options.split())
    assert np.array_equal(
        np.load(tmp_path / "attention_L1_H3.npy"), session.trace.head_weights(1, 3)
    )


# ---- the backward step ----


def _backward(qtbot, window):
    session = window.session
    with qtbot.waitSignal(session.gradientsChanged, timeout=GUI_TIMEOUT_MS):
        window.actions_by_name["backward"].trigger()
    wait_idle(qtbot, session)
    return session.gradients


def test_backward_view_holds_every_stage_norm_in_order(ran, qtbot):
    window, session = ran, ran.session
    trace = _backward(qtbot, window)
    assert window.tabs.currentWidget() is window.gradients
    expected = backward_step(session.model, trace.token_ids.tolist())
    assert [k for k, _ in trace.backward.order] == [k for k, _ in expected.backward.order]
    panel = window.gradients
    x, y = panel.flow_curve.getData()
    norms = [n for _, n in trace.backward.order]
    assert np.allclose(10 ** np.asarray(y), norms, rtol=1e-6)  # plotted on a log axis
    assert np.allclose(norms, [n for _, n in expected.backward.order], rtol=1e-5)
    assert "Loss (whole-prompt next-token loss; evaluation mode)" in panel.result.text()


def test_replay_steps_in_the_recorded_order_and_lights_the_navigator(ran, qtbot):
    window, session = ran, ran.session
    trace = _backward(qtbot, window)
    order = trace.backward.order
    panel = window.gradients
    session.set_replay_position(0)
    assert window.navigator.lit == set()
    for i in range(len(order)):
        panel.step_button.click()
        assert session.state.replay_position == i + 1
        key = order[i][0]
        assert f"reached <b>{key}</b>" in panel.reached.text()
        assert section_of_stage(session.state, key) in window.navigator.lit
        assert len(panel.flow_curve.getData()[0]) == i + 1
    panel.step_button.click()
    assert session.state.replay_position == len(order)  # stops at the embeddings
    assert window.navigator.lit == {section_of_stage(session.state, k) for k, _ in order}
    panel.back_button.click()
    assert session.state.replay_position == len(order) - 1
    session.set_replay_position(0)
    panel.speed.setValue(60)
    panel.toggle_play()
    qtbot.waitUntil(lambda: session.state.replay_position == len(order), timeout=GUI_TIMEOUT_MS)


def test_parameter_table_is_sorted_and_matches_the_trace(ran, qtbot):
    window = ran
    trace = _backward(qtbot, window)
    table = window.gradients.params
    by_name = {p.name: p for p in trace.backward.params}
    assert table.rowCount() == len(by_name)
    shown = [(table.item(r, 0).text(), table.item(r, 2).value) for r in range(table.rowCount())]
    norms = [norm for _, norm in shown]
    assert norms == sorted(norms, reverse=True)
    for name, norm in shown:
        assert norm == by_name[name].grad_norm
    row = [r for r in range(table.rowCount()) if table.item(r, 0).text() == "tok_emb.weight"][0]
    assert table.item(row, 4).value == pytest.approx(by_name["tok_emb.weight"].ratio)
    table.sortItems(4, Qt.SortOrder.AscendingOrder)
    ratios = [table.item(r, 4).value for r in range(table.rowCount())]
    assert ratios == sorted(ratios)


def test_selected_stage_gradient_and_saliency(ran, qtbot):
    window, session = ran, ran.session
    trace = _backward(qtbot, window)
    panel = window.gradients
    session.select_section(find_section(session.state, "embeddings", None))  # their sum's gradient
    assert panel.stage_view.currentWidget() is panel.dims_heatmap
    assert np.array_equal(panel.dims_heatmap.matrix, trace.grad("embeddings/sum"))
    norms = np.linalg.norm(trace.grad("embeddings/sum").astype(np.float64), axis=1)
    assert np.allclose(panel.saliency.weights, norms / norms.max())
    session.select_layer(1)
    assert panel.stage_view.currentWidget() is panel.heatmap
    assert np.array_equal(
        panel.heatmap.matrix, trace.grad("blocks/1/attn/weights")[session.selection.head]
    )


def test_target_token_loss_and_sgd_step_restore_the_weights(ran, qtbot):
    window, session = ran, ran.session
    before = {k: v.clone() for k, v in session.model.state_dict().items()}
    panel = window.gradients
    session.select_position(3)
    panel.one_token.setChecked(True)
    panel.target.setEditText(" fox")
    panel.sgd.setChecked(True)
    panel.lr.setValue(0.5)
    trace = _backward(qtbot, window)
    fox = session.tokenizer.encode(" fox")[0]
    assert trace.backward.target == (3, fox)
    assert trace.backward.sgd_lr == 0.5
    assert trace.backward.loss_after_sgd < trace.backward.loss
    assert "weights restored" in panel.result.text()
    for key, value in session.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    for p in session.model.parameters():
        assert p.grad is None


def test_target_text_of_several_tokens_is_a_message(ran, qtbot):
    window = ran
    window.gradients.one_token.setChecked(True)
    window.gradients.target.setEditText(" two words")
    window.actions_by_name["backward"].trigger()
    assert "must be exactly one" in window.message_bar.text()
    assert window.session.gradients is None


def test_a_new_run_clears_a_stale_backward_step(ran, qtbot):
    window, session = ran, ran.session
    _backward(qtbot, window)
    _wait_run(qtbot, session, lambda: session.toggle_head(0, 0))
    assert session.gradients is None
    assert window.navigator.lit == set()
