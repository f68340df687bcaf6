"""The sampling distribution in the output view and the Generate panel: the bars are
next_token_distribution of the run's logits with the settings in the app state, they
redraw as temperature, top-k and top-p move without running the model, greedy says so,
and the token Generate drew is marked in the distribution it came from."""

import numpy as np
import pytest
import torch

from explorer.state.sampling import GenerationSettings
from explorer.ui.widgets.sampling_chart import DRAWN_COLOR, ROWS
from gpt_core import next_token_distribution
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

PROMPT = "The quick brown fox jumps over the lazy dog"


@pytest.fixture
def output(shared_window, qtbot):
    """The window on the output head with the prompt run; its settings put back after."""
    window = shared_window
    session = window.session
    session.set_generation(GenerationSettings())
    wait_for_run(qtbot, session, PROMPT)
    index = next(i for i, s in enumerate(session.sections) if s.name == "output")
    session.select_section(index)
    wait_idle(qtbot, session)
    yield window
    while session.state.generated:
        with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
            session.undo_generation()
        wait_idle(qtbot, session)
    session.set_generation(GenerationSettings())


def _bars(panel):
    chart = panel.chart
    return chart.rows, chart.before.opts["width"], chart.after.opts["width"]


def _expected(logits, s: GenerationSettings):
    return next_token_distribution(logits, s.temperature, s.top_k, s.top_p)


def _check(panel, logits, settings):
    rows, before, after = _bars(panel)
    d = _expected(logits, settings)
    top = np.argsort(-logits, kind="stable")[:ROWS]
    assert rows[:ROWS].tolist() == top.tolist()
    assert np.array_equal(before, d.before[rows]) and np.array_equal(after, d.probs[rows])
    return d


def test_controls_redraw_both_from_the_runs_logits_without_a_model_run(output, monkeypatch):
    session, view, panel = output.session, output.stage_panel.current_view(), output.generation
    submitted = []
    monkeypatch.setattr(session, "submit", lambda kind, *a, **k: submitted.append(kind))
    logits = session.trace["logits/last"]
    controls = view.sampling_controls
    for temperature, top_k, top_p in [(1.0, 0, 1.0), (0.5, 0, 1.0), (2.0, 7, 1.0),
                                      (1.3, 0, 0.6), (0.8, 40, 0.9)]:  # fmt: skip
        controls.temperature.setValue(temperature)
        controls.top_k.setValue(top_k)
        controls.top_p.setValue(top_p)
        s = session.state.generation
        assert s == GenerationSettings(temperature, top_k or None, 0, top_p if top_p < 1 else None)
        d = _check(view.sampling, logits, s)
        _check(panel.distribution, logits, s)
        # both sets of controls show the state
        assert panel.controls.temperature.value() == temperature
        assert panel.controls.top_p.value() == pytest.approx(top_p)
        text = view.sampling.text.text()
        assert f"<b>{d.possible:,}</b> of 50,257 tokens possible" in text
        assert f"{d.entropy_before:.3f} → {d.entropy_after:.3f} nats" in text
    assert submitted == []


def test_the_cut_lines_sit_under_the_last_kept_token(output):
    session, view = output.session, output.stage_panel.current_view()
    session.set_generation(GenerationSettings(1.0, 5, 0, None))
    top_k_line, top_p_line = view.sampling.chart.cuts
    assert top_k_line.isVisible() and top_k_line.value() == 4.5 and not top_p_line.isVisible()
    logits = session.trace["logits/last"]
    # the random tiny model's logits are nearly flat: a low temperature that leaves a nucleus
    # of a few tokens
    temperature, nucleus = next(
        (t, n)
        for t in np.linspace(0.02, 0.05, 31)
        if 2 <= (n := next_token_distribution(logits, t, None, 0.9).nucleus_size) < ROWS
    )
    session.set_generation(GenerationSettings(float(temperature), None, 0, 0.9))
    assert top_p_line.isVisible() and top_p_line.value() == nucleus - 0.5
    assert not top_k_line.isVisible()


def test_temperature_zero_is_one_token_at_probability_one(output):
    session, view = output.session, output.stage_panel.current_view()
    session.set_generation(GenerationSettings(0.0, 5, 0, 0.5))
    rows, _, after = _bars(view.sampling)
    assert after[0] == 1 and np.count_nonzero(after) == 1
    assert rows[0] == int(np.argmax(session.trace["logits/last"]))
    assert "temperature 0 is greedy" in view.sampling.text.text()
    assert not view.sampling.chart.cuts[0].isVisible()


def test_another_position_reads_its_logits_through_the_lens(output, qtbot):
    session, view = output.session, output.stage_panel.current_view()
    session.set_generation(GenerationSettings(0.9, 30, 0, 0.95))
    with qtbot.waitSignal(session.logitLensChanged, timeout=GUI_TIMEOUT_MS):
        session.select_position(3)
    wait_idle(qtbot, session)
    with torch.no_grad():  # a plain forward of the tiny model, independent of the trace
        ids = torch.tensor([session.trace.token_ids.tolist()])
        logits = session.model(ids)[0, 3].numpy()
    rows, before, after = _bars(view.sampling)
    d = _expected(logits, session.state.generation)
    assert rows[:ROWS].tolist() == np.argsort(-logits, kind="stable")[:ROWS].tolist()
    assert np.allclose(before, d.before[rows], atol=1e-6)
    assert np.allclose(after, d.probs[rows], atol=1e-5)
    assert "position 3" in view.sampling.title.text()


def test_the_drawn_token_is_marked_where_it_was_drawn(output, qtbot):
    session, view = output.session, output.stage_panel.current_view()
    settings = GenerationSettings(1.5, None, 4, 0.9)
    session.set_generation(settings)
    drawn_from = session.trace["logits/last"]
    n = session.trace.n_tokens
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.generate_next()
    wait_idle(qtbot, session)
    token = session.state.generated[-1]
    p = float(_expected(drawn_from, settings).probs[token])
    assert p > 0 and session.state.draws[-1].probability == pytest.approx(p)
    with qtbot.waitSignal(session.logitLensChanged, timeout=GUI_TIMEOUT_MS):
        session.select_position(n - 1)  # the position it was drawn at
    wait_idle(qtbot, session)
    chart = view.sampling.chart
    row = chart.rows.tolist().index(token)
    assert chart.after.opts["brushes"][row] == DRAWN_COLOR
    assert "was drawn here by Generate" in view.sampling.text.text()
    assert f"p = {p:.4g}" in output.generation.count.text()
    session.set_generation(GenerationSettings(0.7, None, 4, None))  # other settings now
    assert "the bars show the settings now" in view.sampling.text.text()
