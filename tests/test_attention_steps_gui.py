"""Attention, step by step, in the window: a click on a cell of either heatmap selects that
(query, key) pair and every number and bar the steps show is the API's (attention_pair, read
here independently of the view); keys move t and s; the default key is the heaviest one; a
switched-off head and a skipped block are said; and the view holds at 1280 x 800 with 25
heads and 1,024 tokens."""

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication, QLabel

from gpt_core import GPTConfig, get_tokenizer, stage_key
from gpt_core.analysis import attention_pair, out_proj_arrays
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

PROMPT = "The quick brown fox jumps over the lazy dog because it was in a hurry"
LAYER, HEAD = 1, 2
TWENTY_FIVE_HEADS = GPTConfig(context_length=1024, emb_dim=100, n_heads=25, n_layers=2)
PLOT_MIN_PX = 150  # the floor


def _open(window, qtbot, layer=LAYER, head=HEAD):
    session = window.session
    index = next(
        i for i, s in enumerate(session.sections) if (s.name, s.layer) == ("attention_steps", layer)
    )
    session.select_section(index)
    session.select_head(head)
    view = window.stage_panel.current_view()
    assert view.name == "attention_steps"
    _out_proj_read(qtbot, view)
    return view


def _out_proj_read(qtbot, view):
    qtbot.waitUntil(
        lambda: view.pair is not None and view.pair.attn_out is not None, timeout=GUI_TIMEOUT_MS
    )


def _click_cell(qtbot, heatmap, row: int, col: int) -> None:
    scene = heatmap.plot.getViewBox().mapViewToScene(QPointF(col + 0.5, row + 0.5))
    qtbot.mouseClick(heatmap.viewport(), Qt.MouseButton.LeftButton, pos=heatmap.mapFromScene(scene))


def _heights(bars: pg.BarGraphItem) -> np.ndarray:
    return np.asarray(bars.opts["height"])


def _number(value: float) -> str:
    return f"{value:.6g}"


@pytest.fixture
def ran(window, qtbot):
    window.prompt.set_text(PROMPT)
    wait_for_run(qtbot, window.session)
    return window


@pytest.mark.parametrize("which", ["scores", "weights"])
def test_a_click_on_a_cell_selects_the_pair_and_the_steps_show_the_apis_numbers(ran, qtbot, which):
    session = ran.session
    view = _open(ran, qtbot)
    t, s = 9, 4
    _click_cell(qtbot, getattr(view, which), t, s)
    assert (session.position, session.state.key_position) == (t, s)
    _out_proj_read(qtbot, view)
    trace = session.trace
    pair = attention_pair(trace, LAYER, HEAD, t, s, *out_proj_arrays(session.model, LAYER))
    # the heatmaps: the selected head's, row t and cell (t, s) marked
    assert np.array_equal(view.scores.matrix, trace[stage_key("attn/scores", LAYER)][HEAD])
    assert np.array_equal(view.weights.matrix, trace[stage_key("attn/weights", LAYER)][HEAD])
    for heatmap in (view.scores, view.weights):
        assert heatmap.highlighted_row == t and heatmap.marked_cell == (t, s)
    steps = view.steps
    # the bars, against arrays read here from the trace
    queries, keys = (trace[stage_key(f"attn/{n}", LAYER)] for n in ("queries", "keys"))
    assert np.array_equal(_heights(steps.qk.bars["q"]), queries[t, HEAD])
    assert np.array_equal(_heights(steps.qk.bars["k"]), keys[s, HEAD])
    assert np.allclose(_heights(steps.products.bars["products"]), pair.products)
    weights_row = trace[stage_key("attn/weights", LAYER)][HEAD, t]
    assert np.array_equal(_heights(steps.weights.bars["weights"]), weights_row[: t + 1])
    assert np.array_equal(_heights(steps.row.bars["scores"]), pair.row[: t + 1])
    masked = steps.row.missing.getData()[0]  # marked −∞
    assert np.array_equal(masked, np.arange(t + 1, trace.n_tokens))
    assert np.allclose(_heights(steps.context.bars["sum"]), pair.weighted_values.sum(0))
    assert np.array_equal(_heights(steps.out.bars["out"]), trace[stage_key("attn/out", LAYER)][t])
    assert np.allclose(_heights(steps.out.bars["share"]), pair.head_out)
    # the numbers, six significant digits
    texts = [panel.numbers.text() for panel in steps.panels]
    assert f"<b>{_number(pair.dot)}</b>" in texts[1] and f"<b>{_number(pair.score)}</b>" in texts[1]
    assert f"m = {_number(pair.row_max)}" in texts[3]
    assert f"<b>{_number(pair.exp_sum)}</b>" in texts[3]
    assert f"<b>{_number(pair.exps[s] / pair.exp_sum)}</b>" in texts[3]
    assert _number(pair.weight) == _number(weights_row[s])
    assert f"<b>{_number(float(np.linalg.norm(pair.head_out)))}</b>" in texts[5]
    # each step names the line of MultiHeadAttention that computes it
    assert "self.W_query(x)" in steps.panels[0].source.text()
    assert "torch.softmax(attn_scores" in steps.panels[3].source.text()
    assert "[15, 32] @ W_query [32, 32]" in steps.panels[0].operation.text()


def test_the_default_key_is_the_heaviest_and_keys_move_t_and_s(ran, qtbot):
    session = ran.session
    view = _open(ran, qtbot)
    session.select_pair(6, None)
    heaviest = int(np.argmax(session.trace.head_weights(LAYER, HEAD)[6]))
    assert view.pair.key == heaviest and view.weights.marked_cell == (6, heaviest)
    qtbot.keyClick(ran.stage_panel, Qt.Key.Key_Down)
    assert (session.position, session.state.key_position) == (7, None)
    qtbot.keyClick(ran.stage_panel, Qt.Key.Key_Up)
    qtbot.keyClick(ran.stage_panel, Qt.Key.Key_Up)
    assert session.position == 5
    start = view.pair.key
    qtbot.keyClick(ran.stage_panel, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert session.state.key_position == min(start + 1, session.trace.n_tokens - 1)
    assert view.pair.key == session.state.key_position
    assert view.pair.masked == (view.pair.key > 5)
    session.select_pair(0, 0)
    qtbot.keyClick(ran.stage_panel, Qt.Key.Key_Up)
    qtbot.keyClick(ran.stage_panel, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert (session.position, session.state.key_position) == (0, 0)  # stays in the prompt
    # A bar of the row picks the key too.
    view.steps.row.placeClicked.emit(0)
    assert session.state.key_position == 0


def test_a_switched_off_head_and_a_skipped_block_are_said(ran, qtbot):
    session = ran.session
    view = _open(ran, qtbot)
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.toggle_head(LAYER, HEAD)
    wait_idle(qtbot, session)
    _out_proj_read(qtbot, view)
    assert view.pair.ablated and view.steps.notice.isVisible()
    assert f"Head {HEAD} is switched off" in view.steps.notice.text()
    assert "replaced it by zeros" in view.steps.panels[4].numbers.text()
    assert view.head_picker.itemText(HEAD) == f"{HEAD} · switched off"
    assert not np.any(view.pair.context)  # the run's context vector: zeroed before out_proj
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.toggle_layer(LAYER)
    wait_idle(qtbot, session)
    assert f"Block {LAYER} is skipped" in view.steps.notice.text()


def test_out_proj_read_for_an_old_model_is_not_shown_for_a_new_one(session, qtbot):
    assert session.out_proj.arrays(0) is None  # read on the worker
    with qtbot.waitSignal(session.out_proj.ready, timeout=GUI_TIMEOUT_MS):
        pass
    old = session.out_proj.arrays(0)
    assert np.array_equal(old[0], session.model.trf_blocks[0].att.out_proj.weight.detach().numpy())
    with qtbot.waitSignal(session.modelChanged, timeout=GUI_TIMEOUT_MS):
        session.load_weights(None, "tiny", seed=2)
    assert session.out_proj.arrays(0) is None  # the old model's are not this one's
    with qtbot.waitSignal(session.out_proj.ready, timeout=GUI_TIMEOUT_MS):
        pass
    new = session.out_proj.arrays(0)
    assert np.array_equal(new[0], session.model.trf_blocks[0].att.out_proj.weight.detach().numpy())
    assert not np.array_equal(new[0], old[0])


# ---------------------------------------------------------------- 1280 x 800, 25 heads, T = 1,024
def _labels_whole(view) -> list[str]:
    """Labels whose text does not fit the room they have (wrapped ones: their height)."""
    cut = []
    for label in view.findChildren(QLabel):
        if not label.isVisible() or not label.text():
            continue
        if label.wordWrap():
            if label.heightForWidth(label.width()) > label.height() + 1:
                cut.append(label.text()[:60])
        elif label.sizeHint().width() > label.width() + 1:
            cut.append(label.text()[:60])
    return cut


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_the_view_holds_with_25_heads_and_1024_tokens(qtbot, open_sized_window, size):
    ids = (get_tokenizer().encode(" the cat sat on the mat") * 200)[:1024]
    window = open_sized_window(TWENTY_FIVE_HEADS, *size, get_tokenizer().decode(ids))
    session = window.session
    assert session.trace.n_tokens == 1024
    view = _open(window, qtbot, layer=1, head=24)
    session.select_pair(1000, 998)
    _out_proj_read(qtbot, view)
    QApplication.processEvents()
    assert window.width() <= size[0] and window.height() <= size[1]
    assert view.head_picker.count() == 25 and view.head_picker.currentIndex() == 24
    assert view.pair.query == 1000 and view.pair.key == 998
    plots = [w for w in view.findChildren(pg.GraphicsView) if w.isVisible()]
    assert len(plots) >= 12
    assert min(plot.height() for plot in plots) >= PLOT_MIN_PX
    right = view.steps_area.viewport().mapTo(view, view.steps_area.viewport().rect().topRight())
    for plot in plots:  # nothing reaches past the view's (or the steps') right edge
        assert plot.mapTo(view, plot.rect().topRight()).x() <= max(view.width(), right.x())
    view.steps_area.ensureWidgetVisible(view.steps.panels[-1])
    QApplication.processEvents()
    assert _labels_whole(view) == []
