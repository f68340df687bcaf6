"""The Lens tab: the grid of the run on screen equals sublayer_lens of the API, the visible
columns are read before the rest (which stops while the tab is hidden and resumes when it is
shown), a new run or switch drops the old grid, and the target's rank follows the picker."""

import threading

import numpy as np
import pytest

from explorer.state import analysis as an
from gpt_core import Interventions, capture
from gpt_core.analysis import sublayer_lens
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

PROMPT = "The cat sat on the mat and looked at the dog while the sun went down slowly"


@pytest.fixture
def lens_tab(shared_window, qtbot):
    """The module's window with PROMPT run and its grid complete. (The tests of how a grid
    streams in have fresh windows: no grid of that run yet.)"""
    window = shared_window
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    window.tabs.setCurrentWidget(window.sublayer_lens)
    qtbot.waitUntil(
        lambda: session.state.sublayer_lens is not None and session.state.sublayer_lens.complete,
        timeout=GUI_TIMEOUT_MS,
    )
    wait_idle(qtbot, session)
    return window


def _api_lens(session, target=None, interventions=None):
    trace = capture(session.model, session.token_ids(), interventions or Interventions())
    return sublayer_lens(session.model, trace, target)


def test_the_grid_is_the_api_lens_of_the_run_on_screen(lens_tab):
    session, view = lens_tab.session, lens_tab.sublayer_lens
    grid, expected = session.state.sublayer_lens, _api_lens(session)
    assert grid.trace is session.trace and grid.labels == expected.labels
    assert np.array_equal(grid.topk_ids, expected.topk_ids)
    for name in ("top1_probs", "entropy", "kl", "topk_probs"):
        assert np.allclose(getattr(grid, name), getattr(expected, name), atol=1e-6), name
    # what the heatmap shows: the visible columns of the chosen quantity, the top-1 tokens
    visible = view.visible_positions()
    for index in range(view.quantity.count()):
        view.quantity.setCurrentIndex(index)
        name = view.quantity.currentData()
        if name == "target_rank":
            continue
        shown = getattr(expected, name)[:, visible.start : visible.stop]
        assert np.allclose(view.grid.matrix, shown, atol=1e-6), name
    texts = session.tokenizer.displays(expected.top1_ids[3, visible.start : visible.stop])
    assert [view.cell_text.shown_text(3, c) for c in range(len(visible))] == texts
    hover = view.grid.describe_cell(2, 0)
    first_top = session.tokenizer.displays(expected.topk_ids[2, visible.start].tolist())
    assert all(label in hover for label in first_top) and "top 5" in hover


def test_visible_columns_come_first_and_the_rest_streams_in(window, qtbot, monkeypatch):
    import explorer.session.jobs.sublayer_lens as jobs

    session, view = window.session, window.sublayer_lens
    wait_for_run(qtbot, session, PROMPT)
    asked, read = [], []
    request = session.sublayer_lens.request
    monkeypatch.setattr(
        session.sublayer_lens, "request", lambda v: (asked.append(list(v)), request(v))
    )
    reader = jobs.sublayer_lens
    monkeypatch.setattr(jobs, "sublayer_lens", lambda *a: (read.append(list(a[3])), reader(*a))[1])
    window.resize(700, 900)  # fewer columns fit than the prompt has
    window.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: session.state.sublayer_lens is not None, timeout=GUI_TIMEOUT_MS)
    assert 0 < len(asked[0]) < session.trace.n_tokens
    assert read[0] == asked[0]  # the first columns read are the ones in view
    qtbot.waitUntil(lambda: session.state.sublayer_lens.complete, timeout=GUI_TIMEOUT_MS)
    assert len(read) > 1  # the rest streamed in later chunks
    view.scroll.setValue(view.scroll.maximum())  # the last columns, read meanwhile
    end = view.visible_positions()
    assert end.stop == session.trace.n_tokens
    expected = _api_lens(session)
    assert np.allclose(view.grid.matrix, expected.top1_probs[:, end.start :], atol=1e-6)
    hover = view.grid.describe_cell(2, 0)  # the first column in view, not position 0
    assert f"× {session.trace.position_labels[end.start]} ·" in hover
    top = session.tokenizer.displays(expected.topk_ids[2, end.start].tolist())
    assert all(label in hover for label in top)


def test_a_switched_off_head_gets_its_own_lens_and_the_old_grid_is_dropped(lens_tab, qtbot):
    session = lens_tab.session
    old = session.state.sublayer_lens
    session.toggle_head(0, 1)
    qtbot.waitUntil(
        lambda: session.state.sublayer_lens is not old and session.state.sublayer_lens.complete,
        timeout=GUI_TIMEOUT_MS,
    )
    wait_idle(qtbot, session)
    expected = _api_lens(session, interventions=session.interventions)
    assert np.allclose(
        session.state.sublayer_lens.kl, expected.kl, atol=1e-5
    )  # read in other blocks: the
    # folded KL's float32 logits differ by a few 1e-6 (the bar for unchanged results: 1e-5)
    # the switch changed the lens by far more than the tolerance above
    assert np.abs(old.kl - expected.kl).max() > 20 * 1e-6


def test_the_target_picker_sets_the_rank_shown(lens_tab, qtbot):
    session, view = lens_tab.session, lens_tab.sublayer_lens
    view.quantity.setCurrentIndex(view.quantity.findData("target_rank"))
    assert view.grid.non_finite_cells() == view.grid.matrix.size  # no target yet
    view.target.setCurrentIndex(1)  # the second most likely token at the last position
    target = view.target.token_id()
    view.target.activated.emit(1)
    qtbot.waitUntil(
        lambda: (
            session.state.sublayer_lens.target == target and session.state.sublayer_lens.complete
        ),
        timeout=GUI_TIMEOUT_MS,
    )
    expected = _api_lens(session, target)
    assert np.array_equal(session.state.sublayer_lens.target_rank, expected.target_rank)
    assert session.state.sublayer_lens.target_rank[-1, -1] == 1  # second at the output
    visible = view.visible_positions()
    shown = np.log10(1 + expected.target_rank[:, visible.start : visible.stop])
    assert np.allclose(view.grid.matrix, shown, atol=1e-6)


def test_a_hidden_grid_stops_streaming_and_resumes_when_shown(window, qtbot, monkeypatch):
    import explorer.session.jobs.sublayer_lens as jobs

    session, view = window.session, window.sublayer_lens
    wait_for_run(qtbot, session, PROMPT)
    monkeypatch.setattr(jobs, "CHUNK", 1)  # many chunks: room to stop between them
    reader, read, gate = jobs.sublayer_lens, [], threading.Event()

    def gated_reader(*args):
        read.append(list(args[3]))
        if len(read) == 2:  # the first chunk after the visible ones waits for the test
            gate.wait(GUI_TIMEOUT_MS / 1000)
        return reader(*args)

    monkeypatch.setattr(jobs, "sublayer_lens", gated_reader)
    try:
        window.resize(700, 900)
        window.tabs.setCurrentWidget(view)
        qtbot.waitUntil(
            lambda: session.state.sublayer_lens is not None and len(read) == 2,
            timeout=GUI_TIMEOUT_MS,
        )
        window.tabs.setCurrentWidget(window.stage_panel)  # the Lens tab hides
    finally:
        gate.set()  # the chunk in hand finishes; the job stops before the next
    wait_idle(qtbot, session)
    grid = session.state.sublayer_lens
    assert len(read) == 2 and not grid.complete
    assert set(np.flatnonzero(grid.read)) == set().union(*read)  # what was read is kept
    kept, chunks_before = grid.read.copy(), len(read)
    window.tabs.setCurrentWidget(view)  # shown again: the rest is read, not what was kept
    qtbot.waitUntil(lambda: session.state.sublayer_lens.complete, timeout=GUI_TIMEOUT_MS)
    again = [p for chunk in read[chunks_before:] for p in chunk]
    assert sorted(again) == np.flatnonzero(~kept).tolist()  # each missing column read once
    expected = _api_lens(session)
    assert np.allclose(session.state.sublayer_lens.kl, expected.kl, atol=1e-5)  # chunking


def test_asking_again_while_the_rest_streams_reads_no_column_twice(window, qtbot, monkeypatch):
    """A scroll or resize asks for the visible columns again; once they are read, the job
    streaming the rest goes on rather than starting over (which read its chunk twice)."""
    import explorer.session.jobs.sublayer_lens as jobs

    session, view = window.session, window.sublayer_lens
    window.resize(700, 900)
    window.tabs.setCurrentWidget(view)  # laid out before the run: the visible range holds
    qtbot.wait(100)
    monkeypatch.setattr(jobs, "CHUNK", 1)
    reader, read, gate = jobs.sublayer_lens, [], threading.Event()

    def gated_reader(*args):
        read.append(list(args[3]))
        if len(read) == 2:  # the first chunk of the rest waits for the test
            gate.wait(GUI_TIMEOUT_MS / 1000)
        return reader(*args)

    monkeypatch.setattr(jobs, "sublayer_lens", gated_reader)
    try:
        session.set_prompt(PROMPT)
        session.run()
        qtbot.waitUntil(lambda: len(read) == 2, timeout=GUI_TIMEOUT_MS)
        visible = read[0]  # what the view asked for first
        qtbot.waitUntil(  # the visible columns are in: the job now streams the rest
            lambda: not an.sublayer_lens_columns_missing(session.state)[visible].any(),
            timeout=GUI_TIMEOUT_MS,
        )
        session.sublayer_lens.request(visible)  # all of them read: nothing to start over
    finally:
        gate.set()
    qtbot.waitUntil(lambda: session.state.sublayer_lens.complete, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    columns = [p for chunk in read for p in chunk]
    assert sorted(columns) == list(range(session.trace.n_tokens)), read  # each once
