"""The feed-forward and output-head views show their stage's data: plots and tables are
compared with values recomputed from the trace arrays (and, for the logit lens, with
gpt_core.logit_lens), before and after a token is selected and a head switched off."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from explorer.ui.views import feedforward
from explorer.ui.views.output import PROBABILITY_ROLE, VALUE_ROLE
from gpt_core import logit_lens
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

PROMPT = "The quick brown fox jumps over the lazy dog, and the dog sleeps on."


def _gelu_reference(x):
    """GELU's tanh approximation written out again, independently of the view's."""
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


def _step_index(session, kind, layer=None):
    return next(i for i, s in enumerate(session.sections) if s.name == kind and s.layer == layer)


def _column(table, col, role=None):
    items = [table.item(r, col) for r in range(table.rowCount())]
    return [item.text() if role is None else item.data(role) for item in items]


@pytest.fixture
def ff_view(shared_window, qtbot):
    window = shared_window
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    session.select_section(_step_index(session, "ff", 1))
    view = window.stage_panel.view_for("feedforward")
    assert window.stage_panel.current_view() is view
    return view


@pytest.fixture
def output_window(shared_window, qtbot):
    """The window showing the output head, its first logit lens in."""
    window = shared_window
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    with qtbot.waitSignal(session.logitLensChanged, timeout=GUI_TIMEOUT_MS):
        session.select_section(_step_index(session, "output"))
    assert window.stage_panel.current_view() is window.stage_panel.view_for("output")
    return window


# ---- feed-forward ----
def test_ff_scatter_lies_on_the_gelu_curve_of_the_traced_values(ff_view):
    trace = ff_view.trace
    pre, gelu = trace["blocks/1/ff/pre_gelu"], trace["blocks/1/ff/gelu"]  # [T, 4E]
    x, y = ff_view.points.getData()
    assert len(x) == pre.size  # a short prompt: every value is shown
    assert np.array_equal(x, pre.ravel()) and np.array_equal(y, gelu.ravel())
    assert np.allclose(y, _gelu_reference(x), atol=1e-5)  # the model's GELU is the tanh one
    cx, cy = ff_view.curve.getData()
    assert cx[0] == pre.min() and cx[-1] == pre.max()
    assert np.allclose(cy, _gelu_reference(cx), atol=1e-6)
    caption = ff_view.scatter_caption.text()
    assert f"{pre.size:,} of {pre.size:,} values shown" in caption and "sample" not in caption


def test_ff_histograms_count_the_traced_values(ff_view):
    trace = ff_view.trace
    pre, gelu = trace["blocks/1/ff/pre_gelu"], trace["blocks/1/ff/gelu"]
    low, high = min(pre.min(), gelu.min()), max(pre.max(), gelu.max())
    for item, values in ((ff_view.pre_hist, pre), (ff_view.gelu_hist, gelu)):
        edges, counts = item.getData()
        assert edges[0] == pytest.approx(low) and edges[-1] == pytest.approx(high)
        expected, expected_edges = np.histogram(values, 100, (float(low), float(high)))
        assert np.array_equal(counts, expected) and np.array_equal(edges, expected_edges)
        assert counts.sum() == values.size


def test_ff_scatter_is_a_fixed_subsample_when_there_are_many_values(
    shared_window, qtbot, monkeypatch
):
    monkeypatch.setattr(feedforward, "MAX_POINTS", 500)
    window = shared_window
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    session.select_section(_step_index(session, "ff", 0))
    view = window.stage_panel.view_for("feedforward")
    pre, gelu = session.trace["blocks/0/ff/pre_gelu"], session.trace["blocks/0/ff/gelu"]
    x, y = view.points.getData()
    shown = feedforward.sample_indices(pre.size, 500)
    assert len(x) == 500 and len(np.unique(shown)) == 500
    assert np.array_equal(x, pre.ravel()[shown]) and np.array_equal(y, gelu.ravel()[shown])
    caption = view.scatter_caption.text()
    assert f"500 of {pre.size:,} values shown" in caption and "a fixed random sample" in caption
    assert np.array_equal(feedforward.sample_indices(pre.size, 500), shown)  # deterministic


def test_sample_indices_spread_over_all_values():
    shown = feedforward.sample_indices(400_000, 20_000)
    assert shown.size == 20_000 and np.all(np.diff(shown) > 0)
    assert shown[0] < 1_000 and shown[-1] > 399_000
    assert np.array_equal(feedforward.sample_indices(300, 20_000), np.arange(300))


def test_ff_top_units_follow_the_selected_token(ff_view):
    session, trace = ff_view.session, ff_view.trace
    pre, gelu = trace["blocks/1/ff/pre_gelu"], trace["blocks/1/ff/gelu"]
    for position in (session.position, 3):
        session.select_position(position)
        top = np.argsort(-gelu[position])[:10]
        table = ff_view.units_table
        assert [int(t) for t in _column(table, 0)] == top.tolist()
        assert _column(table, 1) == [f"{pre[position, u]:.4f}" for u in top]
        assert _column(table, 2) == [f"{gelu[position, u]:.4f}" for u in top]
        assert f"Token {position} “{trace.token_strings[position]}”" in ff_view.units_title.text()


def test_ff_heatmap_shows_the_most_active_units_and_selects_tokens(ff_view, qtbot):
    session, trace = ff_view.session, ff_view.trace
    gelu = trace["blocks/1/ff/gelu"]  # [T, 4E]
    units = np.argsort(-gelu.max(axis=0))[:64]
    heatmap = ff_view.heatmap
    assert heatmap.col_labels == [str(u) for u in units]
    assert np.array_equal(heatmap.matrix, gelu[:, units])
    assert heatmap.row_labels == ff_view.labels()
    assert heatmap.highlighted_row == session.position

    scene = heatmap.plot.getViewBox().mapViewToScene(QPointF(10.5, 4.5))
    qtbot.mouseClick(heatmap.viewport(), Qt.MouseButton.LeftButton, pos=heatmap.mapFromScene(scene))
    assert session.position == 4
    assert heatmap.highlighted_row == 4
    assert int(ff_view.units_table.item(0, 0).text()) == int(np.argmax(gelu[4]))


# ---- output head ----
def _assert_predictions(panel, trace, position, tokenizer):
    ids = trace["logits/topk_ids"][position]  # [k]
    probs = trace["logits/topk_probs"][position]  # [k]
    table = panel.table
    assert _column(table, 0, VALUE_ROLE) == list(range(1, len(ids) + 1))
    assert _column(table, 2, VALUE_ROLE) == ids.tolist()
    assert [int(t) for t in _column(table, 2)] == ids.tolist()
    assert np.array_equal(np.array(_column(table, 3, VALUE_ROLE), dtype=np.float32), probs)
    assert np.allclose([float(t) for t in _column(table, 3)], probs, rtol=1e-3)
    assert _column(table, 1) == [tokenizer.display(i) for i in ids]
    assert np.array_equal(panel.chart.bars.opts["width"], probs)


def test_output_shows_the_top_k_and_the_actual_next_token(output_window):
    session = output_window.session
    view = output_window.stage_panel.view_for("output")
    trace = session.trace
    last = trace.n_tokens - 1
    _assert_predictions(view.after, trace, last, session.tokenizer)
    assert not view.before.isVisible()
    assert "last token" in view.summary.text()
    assert f"Mean loss of the prompt: {trace.loss:.3f}" in view.summary.text()

    session.select_position(2)
    _assert_predictions(view.after, trace, 2, session.tokenizer)
    loss = trace["loss/per_token"][2]
    text = view.summary.text()
    assert f"(id {trace.token_ids[3]})" in text
    assert f"loss −log p = {loss:.3f}" in text
    assert f"p = {np.exp(-loss):.4g}" in text


def test_output_shows_before_and_after_when_a_head_is_off(output_window, qtbot):
    session = output_window.session
    view = output_window.stage_panel.view_for("output")
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.toggle_head(0, 1)
    wait_idle(qtbot, session)
    assert session.result.comparison is not None
    assert view.before.isVisible()
    for position in (session.position, 1):
        session.select_position(position)
        _assert_predictions(view.before, session.result.baseline, position, session.tokenizer)
        _assert_predictions(view.after, session.trace, position, session.tokenizer)
    before, after = session.result.baseline["logits/topk_probs"], session.trace["logits/topk_probs"]
    assert not np.array_equal(before, after)  # the head mattered: the two tables differ
    assert f"before {session.result.baseline.loss:.3f} → after {session.trace.loss:.3f}" in (
        view.summary.text()
    )

    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.restore_all()
    wait_idle(qtbot, session)
    assert session.result.comparison is None and not view.before.isVisible()
    _assert_predictions(view.after, session.trace, 1, session.tokenizer)


def _assert_lens(view, session, position):
    expected = logit_lens(session.model, session.trace, position)
    table = view.lens_table
    rows, k = expected.topk_ids.shape
    assert (table.rowCount(), table.columnCount()) == (rows, k)
    ids = [[table.item(r, c).data(VALUE_ROLE) for c in range(k)] for r in range(rows)]
    probs = [[table.item(r, c).data(PROBABILITY_ROLE) for c in range(k)] for r in range(rows)]
    assert np.array_equal(ids, expected.topk_ids)
    assert np.allclose(probs, expected.topk_probs, rtol=1e-5, atol=1e-7)
    assert session.tokenizer.display(ids[0][0]) in table.item(0, 0).text()
    final = session.trace["logits/topk_ids"][position, 0]
    first = int(np.flatnonzero(expected.topk_ids[:, 0] == final)[0])
    headers = [table.verticalHeaderItem(r).text() for r in range(rows)]
    assert headers[first] == f"{expected.labels[first]} ★"
    assert [h for r, h in enumerate(headers) if r != first] == [
        label for r, label in enumerate(expected.labels) if r != first
    ]


def test_logit_lens_table_follows_the_selected_position(output_window, qtbot):
    session = output_window.session
    view = output_window.stage_panel.view_for("output")
    _assert_lens(view, session, session.position)
    with qtbot.waitSignal(session.logitLensChanged, timeout=GUI_TIMEOUT_MS):
        session.select_position(1)
    _assert_lens(view, session, 1)
    assert view.lens_shown.position == 1


def test_point_cloud_paints_a_dot_where_each_point_is(qtbot):
    import pyqtgraph as pg

    plot = pg.PlotWidget(background="w")
    qtbot.addWidget(plot)
    plot.resize(300, 300)
    cloud = feedforward.PointCloud((51, 102, 204), alpha=1.0)
    plot.addItem(cloud)
    cloud.setData(np.array([0.25, 0.75]), np.array([0.25, 0.75]))
    plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
    plot.show()
    qtbot.waitExposed(plot)
    image = plot.grab().toImage()
    view_box = plot.getViewBox()

    def color_at(x, y):
        point = plot.mapFromScene(view_box.mapViewToScene(QPointF(x, y)))
        return image.pixelColor(point.x(), point.y()).getRgb()[:3]

    assert color_at(0.25, 0.25) == (51, 102, 204)
    assert color_at(0.75, 0.75) == (51, 102, 204)
    assert color_at(0.75, 0.25) == (255, 255, 255)
    assert cloud.dataBounds(0) == (0.25, 0.75)
