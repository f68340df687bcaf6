"""The embeddings, LayerNorm and residual views show the trace's numbers: heatmaps hold the
trace's arrays, curves equal norms and statistics recomputed here with numpy, histograms
are built from the named parameters, and the selected token is marked everywhere."""

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from tests.conftest import wait_for_run

PROMPT = "Every effort moves you forward, one small step at a time."
EPS = 1e-5
N_LAYERS = 2  # the tiny preset


@pytest.fixture
def ran(shared_window, qtbot):
    """The module's window with PROMPT run; the views' choices as the last test left them
    (the defaults are checked on a fresh window)."""
    wait_for_run(qtbot, shared_window.session, PROMPT)
    return shared_window


def _show(window, kind, layer=None):
    session = window.session
    index = next(i for i, s in enumerate(session.sections) if (s.name, s.layer) == (kind, layer))
    session.select_section(index)
    view = window.stage_panel.view_for(session.section.spec.view)
    assert window.stage_panel.current_view() is view
    return session, view


def _click_place(qtbot, plot, place: int) -> None:
    """A real left click on the plot at x = place (in the middle of the y range)."""
    box = plot.getPlotItem().getViewBox()
    (_, _), (y_low, y_high) = box.viewRange()
    scene = box.mapViewToScene(QPointF(place, (y_low + y_high) / 2))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=plot.mapFromScene(scene))


def _highlighted_row(heatmap) -> int | None:
    return heatmap.highlighted_row


# ---------------------------------------------------------------- embeddings
EMBEDDING_KEYS = {
    "token": "embeddings/token",
    "position": "embeddings/position",
    "sum": "embeddings/sum",
}


def test_embeddings_heatmap_shows_the_chosen_embedding(window, qtbot):
    wait_for_run(qtbot, window.session, PROMPT)  # a fresh window: its default choice
    session, view = _show(window, "embeddings")
    trace = session.trace
    assert view.choice.chosen == "sum"  # the residual stream's start, by default
    assert np.array_equal(view.heatmap.matrix, trace["embeddings/sum"])
    for choice in ("token", "position", "sum"):
        qtbot.mouseClick(view.choice.buttons[choice], Qt.MouseButton.LeftButton)
        assert view.choice.chosen == choice
        assert np.array_equal(view.heatmap.matrix, trace[EMBEDDING_KEYS[choice]])
        assert view.heatmap.row_labels == trace.position_labels
        assert view.heatmap.signed
    value = trace["embeddings/sum"][3, 7]
    assert f"dim 7: {value:.6g}" in view.heatmap.describe_cell(3, 7)
    assert trace.position_labels[3] in view.heatmap.describe_cell(3, 7)
    assert f"id {trace.token_ids[3]}" in view.heatmap.describe_cell(3, 7)


def test_embeddings_choice_is_kept_when_the_trace_changes(ran, qtbot):
    session, view = _show(ran, "embeddings")
    qtbot.mouseClick(view.choice.buttons["position"], Qt.MouseButton.LeftButton)
    wait_for_run(qtbot, session, "A different prompt, longer than the first one was.")
    assert view.choice.chosen == "position"
    assert np.array_equal(view.heatmap.matrix, session.trace["embeddings/position"])
    assert view.heatmap.matrix.shape[0] == session.trace.n_tokens


def test_embedding_norm_curves_are_the_l2_norms(ran):
    session, view = _show(ran, "embeddings")
    trace = session.trace
    for choice, key in EMBEDDING_KEYS.items():
        x, y = view.norms.curves[choice].getData()
        assert np.array_equal(x, np.arange(trace.n_tokens))
        expected = np.sqrt((trace[key].astype(np.float64) ** 2).sum(axis=1))
        np.testing.assert_allclose(y, expected, rtol=1e-5)
    assert view.norms.names == trace.position_labels


def test_embeddings_mark_the_selected_position(ran, qtbot):
    session, view = _show(ran, "embeddings")
    last = session.trace.n_tokens - 1
    assert _highlighted_row(view.heatmap) == last
    assert view.norms.marker.value() == last
    session.select_position(2)
    assert _highlighted_row(view.heatmap) == 2
    assert view.norms.marker.value() == 2
    _click_place(qtbot, view.norms, 5)
    assert session.position == 5
    assert view.norms.marker.value() == 5
    view.heatmap.clicked.emit(4, 0)
    assert session.position == 4 and _highlighted_row(view.heatmap) == 4


# ---------------------------------------------------------------- LayerNorm
NORMS = [  # kind, layer, trace prefix, its input, its parameters
    ("ln1", 0, "blocks/0/ln1", "embeddings/sum", "trf_blocks.0.norm1"),
    ("ln1", 1, "blocks/1/ln1", "blocks/0/out", "trf_blocks.1.norm1"),
    ("ln2", 0, "blocks/0/ln2", "blocks/0/resid_mid", "trf_blocks.0.norm2"),
    ("ln2", 1, "blocks/1/ln2", "blocks/1/resid_mid", "trf_blocks.1.norm2"),
    ("final_norm", None, "final_norm", f"blocks/{N_LAYERS - 1}/out", "final_norm"),
]


@pytest.fixture
def distinct_parameters(ran, monkeypatch):
    """A different random vector per scale/shift parameter, so a histogram of the wrong
    parameter (or of a constant fresh one) cannot pass."""
    rng = np.random.default_rng(0)
    state = ran.session.state
    fakes = {
        name: rng.normal(i, 1 + i, values.shape).astype(np.float32)
        for i, (name, values) in enumerate(state.model.small_parameters.items())
    }
    model = dataclasses.replace(state.model, small_parameters=fakes)
    monkeypatch.setattr(ran.session, "state", dataclasses.replace(state, model=model))
    return fakes.__getitem__


@pytest.mark.parametrize(("kind", "layer", "prefix", "input_key", "param"), NORMS)
def test_layernorm_statistics_match_numpy(ran, kind, layer, prefix, input_key, param):
    session, view = _show(ran, kind, layer)
    trace = session.trace
    x = trace[input_key].astype(np.float64)  # [T, E]
    mean, var = trace[f"{prefix}/mean"], trace[f"{prefix}/var"]
    # the trace's statistics belong to that input (biased variance)
    np.testing.assert_allclose(mean, x.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(var, x.var(axis=1), rtol=1e-4, atol=1e-7)

    z = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + EPS)
    out = trace[f"{prefix}/out"].astype(np.float64)
    expected = {
        "input": (mean, var),
        "normalised": (z.mean(axis=1), z.var(axis=1)),
        "out": (out.mean(axis=1), out.var(axis=1)),
    }
    for stage, (exp_mean, exp_var) in expected.items():
        got_mean, got_var = view.stats[stage]
        np.testing.assert_allclose(got_mean, exp_mean, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got_var, exp_var, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(view.mean_plot.curves[stage].yData, exp_mean, atol=1e-6)
        np.testing.assert_allclose(view.var_plot.curves[stage].yData, exp_var, rtol=1e-4)
    z_mean, z_var = view.stats["normalised"]
    assert np.abs(z_mean).max() < 1e-5
    np.testing.assert_allclose(z_var, var / (var + EPS), rtol=1e-4)  # ≈ 1, just under
    assert "mean ≈ 0" in view.check.text() and "variance ≈ 1" in view.check.text()
    assert f"{z_var.min():.4f}" in view.check.text()


@pytest.mark.parametrize(("kind", "layer", "prefix", "input_key", "param"), NORMS)
def test_layernorm_heatmap_shows_output_normalised_or_input(
    ran, qtbot, kind, layer, prefix, input_key, param
):
    session, view = _show(ran, kind, layer)
    trace = session.trace
    assert view.choice.chosen == "out"
    assert np.array_equal(view.heatmap.matrix, trace[f"{prefix}/out"])
    qtbot.mouseClick(view.choice.buttons["input"], Qt.MouseButton.LeftButton)
    assert np.array_equal(view.heatmap.matrix, trace[input_key])
    qtbot.mouseClick(view.choice.buttons["normalised"], Qt.MouseButton.LeftButton)
    x = trace[input_key].astype(np.float64)
    z = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + EPS)
    np.testing.assert_allclose(view.heatmap.matrix, z, atol=1e-3)
    qtbot.mouseClick(view.choice.buttons["out"], Qt.MouseButton.LeftButton)
    assert np.array_equal(view.heatmap.matrix, trace[f"{prefix}/out"])


@pytest.mark.parametrize(("kind", "layer", "prefix", "input_key", "param"), NORMS)
def test_layernorm_histograms_are_of_its_scale_and_shift(
    ran, distinct_parameters, kind, layer, prefix, input_key, param
):
    session, view = _show(ran, kind, layer)
    view.draw(session.section)  # with the substituted parameters
    for hist, name in ((view.scale_hist, f"{param}.scale"), (view.shift_hist, f"{param}.shift")):
        values = distinct_parameters(name)
        counts, edges = np.histogram(values, bins=len(hist.counts))
        assert np.array_equal(hist.counts, counts)
        np.testing.assert_allclose(hist.edges, edges)
        assert hist.counts.sum() == session.config.emb_dim
        x, y = hist.bars.getData()
        assert np.array_equal(y, counts)
        assert f"mean {values.mean():.3g}" in hist.getPlotItem().titleLabel.text


def test_layernorm_marks_the_selected_position(ran, qtbot):
    session, view = _show(ran, "ln2", 1)
    session.select_position(3)
    assert _highlighted_row(view.heatmap) == 3
    assert view.mean_plot.marker.value() == 3 and view.var_plot.marker.value() == 3
    _click_place(qtbot, view.mean_plot, 6)
    assert session.position == 6
    assert view.var_plot.marker.value() == 6 and _highlighted_row(view.heatmap) == 6


# ---------------------------------------------------------------- residual stream
DEPTH_KEYS = ["embeddings/sum"] + [
    key for i in range(N_LAYERS) for key in (f"blocks/{i}/resid_mid", f"blocks/{i}/out")
]
RESIDUALS = [  # kind, layer, trace key, row along depth
    ("resid_mid", 0, "blocks/0/resid_mid", 1),
    ("block_out", 0, "blocks/0/out", 2),
    ("resid_mid", 1, "blocks/1/resid_mid", 3),
    ("block_out", 1, "blocks/1/out", 4),
]


def _depth_norms(trace):
    return np.stack([np.linalg.norm(trace[k].astype(np.float64), axis=1) for k in DEPTH_KEYS])


@pytest.mark.parametrize(("kind", "layer", "key", "row"), RESIDUALS)
def test_residual_view_shows_the_stream_and_its_norms(ran, kind, layer, key, row):
    session, view = _show(ran, kind, layer)
    trace = session.trace
    assert np.array_equal(view.heatmap.matrix, trace[key])
    norms = _depth_norms(trace)  # [2L+1, T]
    np.testing.assert_allclose(view.depth.matrix, norms, rtol=1e-5)
    assert view.depth.row_labels == ["embeddings", "B0 mid", "B0 out", "B1 mid", "B1 out"]
    assert view.depth.col_labels == trace.position_labels
    assert _highlighted_row(view.depth) == row
    position = session.position
    np.testing.assert_allclose(view.along.curves["token"].yData, norms[:, position], rtol=1e-5)
    np.testing.assert_allclose(view.along.curves["mean"].yData, norms.mean(axis=1), rtol=1e-5)
    assert view.along.marker.value() == row
    assert view.along.names == view.depth.row_labels
    hover = view.depth.describe_cell(row, 2)  # the exact norm, also with log colours
    assert float(hover.split("‖x‖₂ = ")[1]) == pytest.approx(norms[row, 2], rel=1e-5)


def test_residual_follows_the_selected_position(ran, qtbot):
    session, view = _show(ran, "block_out", 1)
    norms = _depth_norms(session.trace)
    session.select_position(1)
    assert _highlighted_row(view.heatmap) == 1
    assert view._position_line.value() == 1.5
    np.testing.assert_allclose(view.along.curves["token"].yData, norms[:, 1], rtol=1e-5)
    assert session.trace.position_labels[1] in view.along.caption
    view.depth.clicked.emit(0, 4)  # a click on the depth map picks its column's token
    assert session.position == 4
    np.testing.assert_allclose(view.along.curves["token"].yData, norms[:, 4], rtol=1e-5)


def test_residual_log_colours_and_opening_a_stage_from_depth(ran, qtbot):
    session, view = _show(ran, "resid_mid", 1)
    norms = _depth_norms(session.trace)
    view.log_colours.setChecked(True)
    np.testing.assert_allclose(view.depth.matrix, np.log10(norms), rtol=1e-5)
    view.log_colours.setChecked(False)
    _click_place(qtbot, view.along, 2)  # B0 out
    assert (session.section.name, session.section.layer) == ("block_out", 0)
    assert _highlighted_row(view.depth) == 2
    _click_place(qtbot, view.along, 0)
    assert session.section.name == "embeddings"
