"""The Attribution tab: what it shows equals attribute() of the API for the run on screen
(strip colours, the methods heatmap, the table), the surprisal row is loss/per_token, a
foil makes it contrastive, a new run drops the result, Cancel stops it, export writes what
the attribute command writes."""

import json

import numpy as np
import pytest
import torch

from gpt_core import Interventions
from gpt_core.analysis.input_attribution import INPUT_ATTRIBUTION_METHODS, Explained, attribute
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

PROMPT = "The quick brown fox jumps over the lazy dog"


def _attribute(window, qtbot):
    view, session = window.attribution, window.session
    reported = []
    session.progress.connect(lambda fraction, message: reported.append(fraction))
    with qtbot.waitSignal(session.attributionChanged, timeout=GUI_TIMEOUT_MS):
        view.run_button.click()
    qtbot.waitUntil(lambda: view.colour_by.count() > 0, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    assert reported and reported == sorted(reported) and reported[-1] == 1.0  # runs counted
    return session.state.attribution_run


@pytest.fixture
def attributed(shared_window, qtbot):
    """The module's window with PROMPT run and attributed at position 5, no foil (the other
    settings as the last test left them; the test that changes the steps has its own window)."""
    window = shared_window
    session = window.session
    window.attribution.use_foil.setChecked(False)
    wait_for_run(qtbot, session, PROMPT)
    session.select_position(5)
    window.tabs.setCurrentWidget(window.attribution)
    run = _attribute(window, qtbot)
    return window, run


def test_the_tab_shows_what_the_api_computes(attributed):
    window, run = attributed
    session, view = window.session, window.attribution
    trace = session.trace
    target = int(trace["logits/topk_ids"][5, 0])  # the picker's default: the top-1 there
    assert run.explained == Explained(target, None, 5)
    expected = attribute(
        session.model, trace.token_ids.tolist(), run.explained, INPUT_ATTRIBUTION_METHODS
    )
    for method in INPUT_ATTRIBUTION_METHODS:
        assert np.allclose(run.result.scores[method], expected.scores[method], atol=1e-5)
    # the methods heatmap: the tokens up to position 5 (later ones cannot reach it), each row
    # scaled to its largest magnitude, surprisal last
    reach = 6
    rows = [
        expected.scores[m][:reach] / np.abs(expected.scores[m]).max()
        for m in INPUT_ATTRIBUTION_METHODS
    ]
    assert np.allclose(
        view.methods.matrix[: len(INPUT_ATTRIBUTION_METHODS)], np.stack(rows), atol=1e-4
    )
    surprisal = view.methods.matrix[-1] * np.nanmax(view.scores_of("surprisal")[:reach])
    assert np.isnan(surprisal[0])
    assert np.allclose(surprisal[1:], trace["loss/per_token"][: reach - 1], atol=1e-5)
    # the strip's colours and the table follow the chosen method
    for index in range(view.colour_by.count()):
        view.colour_by.setCurrentIndex(index)
        name = view.colour_by.currentData()
        scores = view.scores_of(name)
        peak = np.nanmax(np.abs(scores))
        signed = bool(np.nanmin(scores) < 0)
        shown = scores / peak if signed else np.abs(scores) / peak
        assert np.allclose(view.strip.weights, shown, equal_nan=True), name
        assert view.strip.signed == signed
        best = int(np.nanargmax(scores[:reach]))
        assert view.table.rowCount() == reach
        assert view.table.item(0, 0).text() == str(best)  # rank 1 first
        assert float(view.table.item(0, 2).text()) == pytest.approx(scores[best], rel=1e-3)
    view.colour_by.setCurrentIndex(view.colour_by.findData("input_x_grad"))
    scores = view.scores_of("input_x_grad")
    low, high = int(np.argmin(scores)), int(np.argmax(scores))
    assert scores[low] < 0 < scores[high]
    assert view.strip.chip_fill(low).blue() > view.strip.chip_fill(low).red()  # blue: against
    assert view.strip.chip_fill(high).red() > view.strip.chip_fill(high).blue()  # red: for
    # tokens after the position cannot reach it
    assert np.all(run.result.scores["grad_norm"][6:] == 0)
    assert str(round(run.result.value, 4)) in view.explained.text()


def test_a_foil_makes_it_contrastive_and_a_switch_drops_the_result(attributed, qtbot):
    window, _ = attributed
    session, view = window.session, window.attribution
    view.use_foil.setChecked(True)
    assert session.state.attribution_run is not None
    assert view.table.rowCount() == 0  # settings changed: the old result is not shown
    run = _attribute(window, qtbot)
    trace = session.trace
    assert run.explained.foil == int(trace["logits/topk_ids"][5, 1])
    with torch.no_grad():
        logits = session.model(torch.tensor([trace.token_ids.tolist()]))[0, 5]
    contrast = logits[run.explained.target] - logits[run.explained.foil]
    assert run.result.value == pytest.approx(float(contrast), abs=1e-4)
    view.target.show_token(run.explained.foil)  # a choice of one's own …
    view.foil.show_token(run.explained.target)
    view.target.tokenChanged.emit(run.explained.foil)
    session.toggle_head(0, 0)  # another run on screen: the attribution no longer explains it
    qtbot.waitUntil(lambda: session.interventions != Interventions(), timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    assert view.table.rowCount() == 0 and "Attribute" in view.explained.text()
    settings = session.state.attribution  # … stays through a switch change
    assert (settings.target, settings.foil) == (run.explained.foil, run.explained.target)
    session.select_position(4)  # another prediction: the choices start afresh
    top = session.trace["logits/topk_ids"][4]
    assert (session.state.attribution.target, session.state.attribution.foil) == (top[0], top[1])


def test_cancel_stops_it_and_the_window_stays_usable(window, qtbot):
    session, view = window.session, window.attribution
    wait_for_run(qtbot, session, PROMPT)
    window.tabs.setCurrentWidget(view)
    view.steps.setValue(1024)
    view.run_button.click()
    qtbot.waitUntil(lambda: view.cancel_button.isVisible(), timeout=GUI_TIMEOUT_MS)
    view.cancel_button.click()
    wait_idle(qtbot, session)
    assert session.state.attribution_run is None and view.run_button.isEnabled()
    wait_for_run(qtbot, session, PROMPT + " again")  # the model is free for the next job


def test_export_writes_what_the_command_writes(attributed, tmp_path):
    window, run = attributed
    window.attribution.export_to(tmp_path)
    for method in INPUT_ATTRIBUTION_METHODS:
        saved = np.load(tmp_path / f"{method}.npy")
        assert saved.dtype == np.float32 and np.array_equal(saved, run.result.scores[method])
        assert (tmp_path / f"{method}.png").stat().st_size > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["target_id"] == run.explained.target and summary["position"] == 5
    assert summary["integrated_gradients_completeness_gap"] == run.result.completeness_gap


def test_before_a_run_the_tab_says_what_to_do_and_draws_no_heatmap(window, qtbot):
    """Nothing attributed yet: a sentence saying how to get a result, not a heatmap of one
    magenta 'no result' cell."""
    view = window.attribution
    window.tabs.setCurrentWidget(view)
    qtbot.waitUntil(view.isVisible, timeout=GUI_TIMEOUT_MS)
    assert not view.methods.isVisible() and not view.table.isVisible()
    assert view.empty_note.isVisible() and "press Attribute" in view.empty_note.text()
    assert "magenta" not in view.methods.title_label.text
    wait_for_run(qtbot, window.session, PROMPT)
    assert "press Attribute" in view.empty_note.text()
    _attribute(window, qtbot)
    assert view.methods.isVisible() and not view.empty_note.isVisible()
