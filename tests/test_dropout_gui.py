"""Training mode in the window: the Backward tab's switch and seed reach the run, its result
line sets the loss with dropout beside the loss in evaluation mode, and every stage view says
what dropout does there (one line in evaluation mode; in training mode the mask's counts and
the mask itself, read from the trace)."""

import numpy as np

from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

PROMPT = "The cat sat on the"


def _backward(qtbot, window, train: bool, seed: int = 0):
    view = window.gradients
    view.train.setChecked(train)
    view.dropout_seed.setValue(seed)
    with qtbot.waitSignal(window.session.gradientsChanged, timeout=GUI_TIMEOUT_MS):
        view.run_backward()
    wait_idle(qtbot, window.session)


def test_every_view_says_dropout_does_nothing_in_evaluation_mode(shared_window, qtbot):
    session, note = shared_window.session, shared_window.stage_panel.dropout
    wait_for_run(qtbot, session, PROMPT)
    for index in range(len(session.sections)):
        session.select_section(index)
        assert note.line.text().startswith("Evaluation mode: dropout (p = 0.1) does nothing")
        assert not note.show_mask.isVisibleTo(note) and not note.mask.isVisibleTo(note)


def test_training_mode_shows_the_losses_and_each_sites_mask(shared_window, qtbot):
    window = shared_window
    session, note = window.session, window.stage_panel.dropout
    wait_for_run(qtbot, session, PROMPT)
    _backward(qtbot, window, train=True, seed=4)
    run = session.gradients
    assert run.training and run.dropout_seed == 4
    info = run.backward
    text = window.gradients.result.text()
    assert "training mode, dropout seed 4" in text
    assert f"{info.loss:.4f} with dropout ({info.eval_loss:.4f} in evaluation mode)" in text
    note.show_mask.setChecked(True)
    session.open_stage("blocks/1/resid_mid")
    mask = run["blocks/1/attn/out_dropout"]
    dropped = int((mask == 0).sum())
    assert f"dropout seed 4): dropout zeroed {dropped:,} of {mask.size:,}" in note.line.text()
    assert "1/(1 − 0.1) = 1.111" in note.line.text()
    assert note.mask.isVisibleTo(note)
    assert np.array_equal(note.mask.matrix, mask)
    session.open_stage("blocks/0/attn/weights")
    session.select_head(2)
    drawn = note.mask.matrix  # the head's [T, T], NaN above the diagonal
    lower = np.tril(np.ones(drawn.shape, dtype=bool))
    assert np.array_equal(drawn[lower], run["blocks/0/attn/dropout"][2][lower])
    assert np.isnan(drawn[~lower]).all()
    session.open_stage("blocks/0/ln1/out")
    assert note.line.text().startswith("No dropout in this section.")
    assert not note.show_mask.isVisibleTo(note)
    _backward(qtbot, window, train=False)
    assert "evaluation mode" in window.gradients.result.text()
    assert note.line.text().startswith("Evaluation mode")
    note.show_mask.setChecked(False)
