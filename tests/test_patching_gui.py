"""The Patching tab: runs off the GUI thread, streams its rows, cancels cleanly, shows what
the API computes, opens a clicked cell in the Stage view, and turns bad set-ups into
messages."""

from dataclasses import replace

import numpy as np
import pytest

from explorer.state.app_state import PatchSettings
from gpt_core.analysis.patching import Metric, default_tokens, patch
from tests.conftest import GUI_TIMEOUT_MS, wait_idle

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPTED = "When Mary and John went to the store, Mary gave a drink to"


@pytest.fixture
def window(shared_window):
    """This module's tests share one window (see conftest.shared_window)."""
    return shared_window


def _set_up(window, **changes):
    """The default settings for CLEAN and CORRUPTED, with `changes`."""
    session = window.session
    texts = {"clean_text": CLEAN, "corrupted_text": CORRUPTED}
    settings = replace(PatchSettings(), **{**texts, **changes})
    session.patching.set_settings(settings)
    window.tabs.setCurrentWidget(window.patching)
    return session


@pytest.fixture
def patched(window, qtbot):
    session = _set_up(window, sweeps=("resid", "heads_by_pos"), method="both")
    window.patching.open_in.setCurrentIndex(window.patching.open_in.findData("clean"))
    partial = []

    def seen(name, values):
        partial.append(name)

    session.patching.partial.connect(seen)
    with qtbot.waitSignal(session.patchingChanged, timeout=GUI_TIMEOUT_MS):
        window.patching.setup.run_button.click()
    qtbot.waitUntil(lambda: session.state.patch_run is not None, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    yield window, partial
    session.patching.partial.disconnect(seen)


def test_the_tab_shows_what_the_api_computes(patched):
    window, partial = patched
    session = window.session
    tokenizer = session.tokenizer
    clean, corrupted = tokenizer.encode(CLEAN), tokenizer.encode(CORRUPTED)
    position = len(clean) - 1
    answer, distractor = default_tokens(session.model, clean, corrupted, position)
    expected = patch(
        session.model,
        clean,
        corrupted,
        Metric("logit_diff", answer, distractor, position),
        ("resid", "heads_by_pos"),
        method="both",
    )
    run = session.state.patch_run
    assert np.allclose(run.result.exact["resid"], expected.exact["resid"], atol=1e-6)
    panel = window.patching.panels["resid"]
    assert np.allclose(panel.exact.matrix, expected.normalised(expected.exact["resid"]), atol=1e-5)
    assert np.allclose(
        panel.estimate.matrix, expected.normalised(expected.estimate("resid")), atol=1e-5
    )
    assert "Correlation" in panel.note.text()
    rows = window.patching.panels["heads_by_pos"].exact.row_labels
    assert rows[:2] == ["L0H0", "L0H1"]
    # the rows streamed in block by block before the result arrived
    assert partial.count("resid") == session.config.n_layers
    parts = window.patching.logit_parts
    assert parts.table.rowCount() == len(run.result.logit_attribution)
    assert "sum to" in parts.total.text()


def test_a_clicked_cell_opens_its_head_and_position_for_the_clean_prompt(patched, qtbot):
    window, _ = patched
    session = window.session
    panel = window.patching.panels["heads_by_pos"]
    n_heads = session.config.n_heads
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        panel.exact.clicked.emit(1 * n_heads + 2, 5)  # block 1, head 2, position 5
    wait_idle(qtbot, session)
    assert window.tabs.currentWidget() is window.stage_panel
    assert session.trace.token_ids.tolist() == session.tokenizer.encode(CLEAN)
    assert (session.section.name, session.section.layer) == ("attention", 1)
    assert session.selection.head == 2 and session.position == 5


def test_a_sweep_can_be_cancelled_and_the_window_stays_usable(window, qtbot):
    session = _set_up(window, sweeps=("resid", "attn", "mlp", "heads_by_pos"))
    window.patching.setup.run_button.click()
    assert window.patching.cancel_button.isVisibleTo(window.patching)
    window.patching.cancel_button.click()
    wait_idle(qtbot, session)
    assert session.state.patch_run is None
    assert window.patching.setup.run_button.isEnabled()
    session.set_prompt("Still works")
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.run()


def test_a_result_for_other_settings_is_dropped(window, qtbot):
    session = _set_up(window, sweeps=("resid",))
    window.patching.setup.run_button.click()
    session.patching.set_settings(replace(session.state.patching, direction="noise"))
    wait_idle(qtbot, session)
    assert session.state.patch_run is None  # computed for denoising


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"corrupted_text": CORRUPTED + " her"}, "clean has 14 tokens, corrupted 15"),
        ({"answer": " Mary Ann"}, "must be exactly one"),
        ({"receiver": "9.0.q"}, "does not exist"),
        ({"receiver": "1.0"}, "receiver"),
        ({"clean_text": "", "corrupted_text": ""}, "type a clean and a corrupted prompt"),
    ],
)
def test_bad_set_ups_are_messages(window, qtbot, changes, message):
    session = _set_up(window, **changes)
    window.patching.setup.run_button.click()
    wait_idle(qtbot, session)
    assert message in window.message_bar.text()
    assert session.state.patch_run is None and window.patching.setup.run_button.isEnabled()


def test_the_strips_mark_where_the_prompts_differ(window):
    _set_up(window)
    setup = window.patching.setup
    assert setup.clean_strip.marked == {9}  # “ John” against “ Mary”
    assert setup.corrupted_strip.marked == {9}
    assert "differ at position 9." in setup.pair_note.text()
    window.session.patching.corrupt_token(9, " Paul")
    assert window.session.state.patching.corrupted_text.endswith("store, Paul gave a drink to")


def test_answers_can_be_picked_from_the_prompts_top_tokens(window, qtbot):
    session = window.session
    session.set_prompt(CLEAN)
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.run()
    wait_idle(qtbot, session)
    _set_up(window)
    setup = window.patching.setup
    setup.show_candidates()
    top = session.trace["logits/topk_ids"][-1][:10].tolist()
    assert setup.answer.count() == 10
    assert setup.answer.itemText(1).startswith(session.tokenizer.display(top[1]) + "   ")
    assert setup.answer.currentText() == ""  # the default stays until one is picked
    setup.answer.setCurrentIndex(1)
    setup.push()
    assert session.state.patching.answer == session.tokenizer.decode([top[1]])
    assert session.tokenizer.single_id(session.state.patching.answer) == top[1]


def test_the_tab_exports_what_the_command_writes(patched, tmp_path):
    window, _ = patched
    written = window.patching.export(str(tmp_path))
    names = {path.name for path in written}
    assert {"resid.npy", "resid.csv", "resid.png", "resid.svg", "summary.json"} <= names
    assert {"attribution_heads_by_pos.npy", "heads_by_pos.csv"} <= names
    run = window.session.state.patch_run
    assert np.array_equal(np.load(tmp_path / "resid.npy"), run.result.exact["resid"])


def test_attribution_alone_fills_every_sweep_in_its_layout(window, qtbot):
    session = _set_up(window, sweeps=("resid", "heads_by_pos"), method="attribution")
    with qtbot.waitSignal(session.patchingChanged, timeout=GUI_TIMEOUT_MS):
        window.patching.setup.run_button.click()
    qtbot.waitUntil(lambda: session.state.patch_run is not None, timeout=GUI_TIMEOUT_MS)
    result = session.state.patch_run.result
    panels = window.patching.panels
    resid = panels["resid (attribution)"].exact
    assert resid.col_labels[0] == "0:When" and resid.row_labels[0] == "L0"
    assert np.allclose(resid.matrix, result.normalised(result.estimate("resid")), atol=1e-5)
    assert panels["heads_by_pos (attribution)"].exact.matrix.shape == (2 * 4, 14)


def test_a_sweep_keeps_its_cancel_while_other_jobs_run(window, qtbot):
    session = _set_up(window, sweeps=("resid", "attn", "mlp", "heads_by_pos"))
    window.patching.setup.run_button.click()
    session.set_prompt("Another job")
    session.run()  # a run submitted while the sweep is under way
    assert window.patching.cancel_button.isVisibleTo(window.patching)
    assert not window.patching.setup.run_button.isEnabled()
    window.patching.cancel_button.click()
    wait_idle(qtbot, session)
    assert window.patching.setup.run_button.isEnabled()


def test_changed_settings_clear_the_maps(patched):
    window, _ = patched
    session = window.session
    assert window.patching.results.count() > 0
    session.patching.set_settings(replace(session.state.patching, direction="noise"))
    assert window.patching.results.count() == 0 and not window.patching.panels


def test_a_click_can_open_the_corrupted_run(patched, qtbot):
    window, _ = patched
    session = window.session
    window.patching.open_in.setCurrentIndex(window.patching.open_in.findData("corrupted"))
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        window.patching.panels["resid"].exact.clicked.emit(1, 9)  # block 1, position 9
    wait_idle(qtbot, session)
    assert session.trace.token_ids.tolist() == session.tokenizer.encode(CORRUPTED)
    assert (session.section.name, session.section.layer) == ("ln1", 1)
    assert session.position == 9


def test_new_settings_stop_the_running_sweep_and_draw_none_of_its_rows(
    window, qtbot, monkeypatch, request
):
    """A 48-token sweep is held after its first row; a new 14-token pair is typed (no Run):
    the sweep is cancelled, its panels cleared, and none of its later rows drawn."""
    import threading

    from explorer.session.jobs import patching as patching_jobs

    first_row, release = threading.Event(), threading.Event()
    request.addfinalizer(release.set)  # never leave the worker held

    def held_patch(*args, on_partial, **kwargs):
        def report(name, values):
            on_partial(name, values)
            first_row.set()
            release.wait(GUI_TIMEOUT_MS / 1000)

        return patch(*args, on_partial=report, **kwargs)

    monkeypatch.setattr(patching_jobs, "patch", held_patch)
    prefix = "After a long and busy day at the market in the old town by the river, " * 2
    session = _set_up(
        window, clean_text=prefix + CLEAN, corrupted_text=prefix + CORRUPTED,
        sweeps=("resid", "heads_by_pos"),
    )  # fmt: skip
    assert len(session.tokenizer.encode(prefix + CLEAN)) == 48
    drawn = []
    session.patching.partial.connect(lambda name, values: drawn.append(values.shape))
    window.patching.setup.run_button.click()
    qtbot.waitUntil(lambda: "resid" in window.patching.panels, timeout=GUI_TIMEOUT_MS)
    assert first_row.is_set() and drawn == [(2, 48)]

    _set_up(window)  # the 14-token pair, Run not pressed
    assert session.runner.in_flight("patch") is None  # the sweep was cancelled
    assert not window.patching.panels and window.patching.results.count() == 0
    release.set()
    wait_idle(qtbot, session)
    assert drawn == [(2, 48)]  # no row of the old sweep after the change
    assert not window.patching.panels and window.patching.results.count() == 0
    assert session.state.patch_run is None
    assert window.patching.setup.run_button.isEnabled()


def test_a_path_patching_cell_names_its_path_and_opens_its_sender_head(window, qtbot):
    session = _set_up(window, sweeps=(), receiver="1.0.q")  # path patching alone
    window.patching.open_in.setCurrentIndex(window.patching.open_in.findData("clean"))
    with qtbot.waitSignal(session.patchingChanged, timeout=GUI_TIMEOUT_MS):
        window.patching.setup.run_button.click()
    qtbot.waitUntil(lambda: session.state.patch_run is not None, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    panel = window.patching.panels["path"]
    assert panel.sweep.name == "path" and "into the receiver" in panel.sweep.patches
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        panel.exact.clicked.emit(0, 3)  # sender block 0, head 3
    wait_idle(qtbot, session)
    assert (session.section.name, session.section.layer) == ("attention", 0)
    assert session.selection.head == 3


def test_the_length_check_follows_the_typing(window, qtbot):
    """The corrupted prompt's token count updates as it is typed, before Enter."""
    _set_up(window, corrupted_text="")
    setup = window.patching.setup
    setup.corrupted.setFocus()
    qtbot.keyClicks(setup.corrupted, "When Mary")  # no Enter, focus kept
    assert "corrupted 2" in setup.pair_note.text()
    assert window.session.state.patching.corrupted_text == ""  # not taken yet
    setup.corrupted.clear()
    qtbot.keyClicks(setup.corrupted, CORRUPTED)
    assert "differ at position 9." in setup.pair_note.text()
    assert setup.corrupted_strip.marked == {9}


def test_the_logit_attribution_table_puts_the_largest_parts_first_and_keeps_them_in_view(
    patched, qtbot
):
    window, _ = patched
    window.resize(1280, 800)
    panel = window.patching.logit_parts
    window.patching.results.setCurrentWidget(panel)
    qtbot.waitUntil(panel.table.isVisible, timeout=GUI_TIMEOUT_MS)
    qtbot.wait(50)
    table = panel.table
    parts = dict(window.session.state.patch_run.result.logit_attribution)
    shown = [table.item(row, 0).text() for row in range(table.rowCount())]
    sizes = [abs(parts[name]) for name in shown]
    assert sorted(shown) == sorted(parts) and sizes == sorted(sizes, reverse=True)
    assert sizes[0] > sizes[-1]  # by |contribution|, not by name
    assert [float(table.item(r, 1).text()) for r in range(3)] == pytest.approx(
        [parts[name] for name in shown[:3]], abs=1e-5
    )
    right = table.columnViewportPosition(1) + table.columnWidth(1)
    assert table.columnViewportPosition(1) >= 0 and right <= table.viewport().width()
    widest = max(table.fontMetrics().horizontalAdvance(table.item(r, 1).text()) for r in range(3))
    assert table.columnWidth(1) >= widest  # the values whole, not elided
    table.sortItems(0)  # a click on a header sorts by it
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == sorted(parts)
