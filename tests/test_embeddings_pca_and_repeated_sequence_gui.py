"""The embeddings view's PCA scatters against pca_2d of the API (and pca_2d against numpy
in test_projection), and a click on an induction score opening that head on the repeated sequence."""

import numpy as np

from explorer.state.app_state import find_section
from gpt_core import capture, stage_key
from gpt_core.analysis import head_type_scores, pca_2d, repeated_sequence_ids
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle

PROMPT = "The cat sat on the mat and the dog sat on the log"


def test_the_embeddings_view_projects_the_prompt_and_every_position(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    session.select_section(find_section(session.state, "embeddings", None))
    session.select_position(3)
    view = window.stage_panel.current_view()
    tokens = capture(session.model, session.token_ids())["embeddings/token"]
    x, y = view.tokens_pca.points.getData()
    expected = pca_2d(tokens).coords
    assert np.allclose(np.stack([x, y], 1), expected, atol=1e-5)
    labels = session.trace.position_labels
    assert set(view.tokens_pca.shown_labels) <= set(labels)
    assert labels[3] in view.tokens_pca.shown_labels  # the selected token's, always
    positions = pca_2d(session.model.pos_emb.weight.detach().numpy()).coords
    x, y = view.positions_pca.points.getData()
    assert np.allclose(np.stack([x, y], 1), positions, atol=1e-5)
    assert len(x) == session.config.context_length
    assert view.positions_pca.path.getData()[0] is not None  # joined in order
    view.tokens_pca.pointClicked.emit(5)
    assert session.position == 5
    view.positions_pca.pointClicked.emit(session.config.context_length - 1)  # beyond the prompt
    assert session.position == 5


LONG_PROMPT = (
    "In the beginning the model reads every token of a long prompt, and each one lands "
    "somewhere on the two principal axes, where their names would pile up on each other."
)


def _label_boxes(plot) -> list:
    """The drawn labels' boxes on screen."""
    return [item.sceneBoundingRect() for item in plot.labels if item.isVisible()]


def test_the_pca_labels_never_overlap_and_every_point_names_itself_on_hover(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, LONG_PROMPT)
    session.select_section(find_section(session.state, "embeddings", None))
    view = window.stage_panel.current_view()
    for width, height in ((1280, 800), (1920, 1080)):
        window.resize(width, height)
        session.select_position(7)
        qtbot.wait(50)
        for plot in (view.tokens_pca, view.positions_pca):
            boxes = _label_boxes(plot)
            assert len(boxes) == len(plot.shown) >= 2
            for i, box in enumerate(boxes):
                assert not any(box.intersects(other) for other in boxes[i + 1 :]), plot.base_title
            assert 7 in plot.shown  # the selected token's label, always
            tip = plot.points.opts["tip"]
            assert all(tip(x=0, y=0, data=k) == plot.names[k] for k in range(len(plot.names)))
        labels = session.trace.position_labels
        assert view.tokens_pca.names == labels and len(view.tokens_pca.shown) < len(labels)
    view.tokens_pca.getViewBox().scaleBy((0.25, 0.25))  # zoomed in: the points spread out
    qtbot.wait(50)
    view.tokens_pca.grab()  # a text item takes the view's new transform when it is painted
    boxes = _label_boxes(view.tokens_pca)
    assert all(not a.intersects(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_a_click_on_an_induction_score_opens_the_head_on_the_probe(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    session.select_section(find_section(session.state, "attention", 1))
    view = window.stage_panel.current_view()
    view.metric.setCurrentIndex(view.metric.findData("induction"))
    view._overview_clicked(1, 2)
    qtbot.waitUntil(
        lambda: (
            view.repeated_sequence_dialog is not None and view.repeated_sequence_dialog.isVisible()
        ),
        timeout=GUI_TIMEOUT_MS,
    )
    wait_idle(qtbot, session)
    n = (session.config.context_length - 1) // 2  # the tiny model's probe is shorter
    ids = repeated_sequence_ids(n, vocab_size=session.config.vocab_size)
    assert list(session.state.model.repeated_sequence_ids) == ids
    weights = capture(session.model, ids)[stage_key("attn/weights", 1)][2]
    assert np.allclose(view.repeated_sequence_dialog.heatmap.matrix, weights, atol=1e-6)
    score = head_type_scores(session.model)["induction"][1, 2]
    assert f"induction {score:.3f}" in view.repeated_sequence_dialog.windowTitle()
    assert session.selection.layer == 1 and session.trace.n_tokens == len(session.token_ids())
    # another metric: a click selects the head as before
    view.metric.setCurrentIndex(view.metric.findData("entropy"))
    view._overview_clicked(1, 3)
    assert session.selection.head == 3
