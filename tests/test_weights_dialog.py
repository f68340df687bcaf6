"""The walk's weight matrices and shapes: the stage header states each stage's operation
with this prompt's shapes, and the Weights dialog (from the header and the architecture
tree) draws a section's matrices with the selected head's slice outlined, following the
selected block and head; the matrices read are dropped with the model."""

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu

from explorer.ui.dialogs.weight_matrices import WeightsDialog
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run

SHORT, LONG = "Every effort moves you", "Every effort moves you forward, one small step at a time."


def _index(session, name, layer=None):
    return next(i for i, s in enumerate(session.sections) if s.name == name and s.layer == layer)


def _header_lines(panel) -> list[str]:
    """The operations as a person reads them (no-break spaces are spaces)."""
    text = panel.operations.text().replace("\u00a0", " ")
    return [part.split(">", 1)[1] for part in text.split("</div>") if ">" in part]


def test_the_header_states_each_stages_operation_with_this_prompts_shapes(window, qtbot):
    session, panel = window.session, window.stage_panel
    e = session.config.emb_dim
    for prompt in (SHORT, LONG):
        wait_for_run(qtbot, session, prompt)
        session.select_section(_index(session, "ff", 1))
        t = session.trace.n_tokens
        lines = _header_lines(panel)
        assert (
            lines[-1] == f"ff: [{t}, {e}] @ [{e}, {4 * e}] → GELU → @ [{4 * e}, {e}] → [{t}, {e}]"
        )
        assert len(lines) == 3  # pre-GELU, GELU, output: one line each
        assert panel.operations.isVisible()
    session.select_section(_index(session, "attention_steps", 0))  # where q, k, v are made
    d, h = session.config.head_dim, session.config.n_heads
    assert (
        f"[{t}, {e}] @ W_query [{e}, {e}] → [{t}, {e}] → view [{t}, {h}, {d}]"
        in (_header_lines(panel)[0])
    )
    # a shape never breaks across lines: its spaces are no-break ones
    assert f"[{t},\u00a0{e}]" in panel.operations.text()


def _shown(dialog) -> list[str]:
    return [p.weights.entry.short_name for p in dialog.plots if p.isVisible()]


def _open_from_header(window, qtbot, section, layer=None) -> WeightsDialog:
    session, panel = window.session, window.stage_panel
    session.select_section(_index(session, section, layer))
    assert panel.weights.isVisible()
    qtbot.mouseClick(panel.weights, Qt.MouseButton.LeftButton)
    dialog = window.findChild(WeightsDialog)
    qtbot.waitUntil(
        lambda: bool(dialog.plots) and dialog.plots[0].weights is not None, timeout=GUI_TIMEOUT_MS
    )
    return dialog


def test_the_header_button_opens_the_attention_matrices_with_the_head_outlined(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, SHORT)
    session.select_head(2)
    dialog = _open_from_header(window, qtbot, "attention", 1)
    e, d = session.config.emb_dim, session.config.head_dim
    shown = [p for p in dialog.plots if p.isVisible()]
    assert [p.weights.entry.short_name for p in shown] == [
        "W_query",
        "W_key",
        "W_value",
        "out_proj",
    ]
    query = shown[0]
    assert query.weights.parameter == "trf_blocks.1.att.W_query.weight"
    title = query.title_label.text
    assert f"W_query</b> [{e}, {e}] · {e * e:,} parameters" in title and "shown&nbsp;1:1" in title
    model_weight = session.model.trf_blocks[1].att.W_query.weight.detach().numpy()
    assert np.array_equal(query.matrix, model_weight.T)  # drawn as [in, out]
    assert query.outlined_cells() == (2 * d, 0, 3 * d, e)  # columns of head 2, every row
    assert shown[3].outlined_cells() == (0, 2 * d, e, 3 * d)  # out_proj: its rows
    session.select_head(0)
    assert query.outlined_cells() == (0, 0, d, e)
    assert f"head 0, columns 0–{d - 1} of W_query, W_key, W_value and rows 0–{d - 1}" in (
        dialog.note.text()
    )
    with qtbot.waitSignal(session.weight_matrices.ready, timeout=GUI_TIMEOUT_MS):
        session.select_layer(0)  # the dialog follows the block
    qtbot.waitUntil(lambda: query.weights.parameter.startswith("trf_blocks.0."))
    session.select_section(_index(session, "ln2", 0))  # no matrices: the attention stays
    assert dialog.plots[0].weights.entry.short_name == "W_query"


def test_the_tree_menu_opens_the_feed_forward_and_the_embeddings(window, qtbot):
    session, tree = window.session, window.navigator
    wait_for_run(qtbot, session, SHORT)
    for name, layer, expected in (
        ("ff", 0, ["W_1", "W_2"]),
        ("embeddings", None, ["tok_emb", "pos_emb"]),
    ):
        item = tree.section_items[_index(session, name, layer)]

        menu = QMenu()
        action = tree.weights_action(item, menu)
        action.trigger()
        dialog = window.findChild(WeightsDialog)
        qtbot.waitUntil(lambda d=dialog, e=expected: _shown(d) == e, timeout=GUI_TIMEOUT_MS)
    assert session.section.name == "embeddings"
    token = dialog.plots[0]
    vocab = session.config.vocab_size
    assert token.weights.factor == (-(-vocab // 768), 1)
    assert f"[{vocab:,}, {session.config.emb_dim}]" in token.title_label.text
    assert f"downsampled&nbsp;{token.weights.factor[0]}×" in token.title_label.text
    assert token.outlined_cells() is None  # no heads in an embedding
    ln_item = tree.section_items[_index(session, "ln1", 0)]
    assert tree.weights_action(ln_item, QMenu()) is None  # a LayerNorm has no matrices


def test_a_new_model_drops_the_matrices_read(session, qtbot):
    jobs = session.weight_matrices
    assert jobs.matrices("attention", 0) is None  # read off the GUI thread
    with qtbot.waitSignal(jobs.ready, timeout=GUI_TIMEOUT_MS):
        pass
    first = jobs.matrices("attention", 0)
    assert first is not None and jobs.matrices("attention", 0)[0] is first[0]  # kept
    with qtbot.waitSignal(session.modelChanged, timeout=GUI_TIMEOUT_MS):
        session.load_weights(None, "tiny", seed=5)
    assert jobs.matrices("attention", 0) is None  # the old model's are gone
    with qtbot.waitSignal(jobs.ready, timeout=GUI_TIMEOUT_MS):
        pass
    again = jobs.matrices("attention", 0)
    new_weight = session.model.trf_blocks[0].att.W_query.weight.detach().numpy().T
    assert np.array_equal(again[0].cells, new_weight)
    assert not np.array_equal(again[0].cells, first[0].cells)


def test_a_closed_dialog_reads_and_draws_nothing_until_opened_again(window, qtbot):
    session = window.session
    wait_for_run(qtbot, session, SHORT)
    dialog = _open_from_header(window, qtbot, "attention", 1)
    dialog.close()
    asked = []
    real = session.weight_matrices.matrices
    session.weight_matrices.matrices = lambda *a: asked.append(a) or real(*a)
    session.select_section(_index(session, "ff", 0))  # followed, not read: nobody sees it
    session.select_head(1)
    assert asked == [] and dialog.shown == ("ff", 0)
    window.stage_panel.weights.click()  # opened again: the section shown now is read
    assert asked and asked[0] == ("ff", 0)
