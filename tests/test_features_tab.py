"""The Features tab and Model ▸ Sparse autoencoder…, in the window (offscreen, tiny model,
SAEs made here): the empty state, loading through the dialog (good and bad), the tab's
numbers against gpt_core's features() for the same run, a click on a feature opening its
card, a feature switch from the card in the effect panel, a corpus scan's contexts on the
card, the site marked in the architecture tree, and a model the SAE no longer fits."""

import html
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explorer.state import features as fs
from explorer.state.app_state import section_of_stage
from explorer.ui.dialogs.sparse_autoencoder import SparseAutoencoderDialog
from explorer.ui.panels.effect import format_signed
from gpt_core import GPTConfig
from gpt_core.sae import features, load_sae, logit_effect, site_of
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle
from tests.sae_helpers import make_sae

HOOK = "blocks.1.hook_resid_pre"
PROMPT = "The cat sat on the mat because it was warm"


def open_dialog(window) -> SparseAutoencoderDialog:
    window.actions_by_name["sparse_autoencoder"].trigger()
    dialog = window.findChildren(SparseAutoencoderDialog)[-1]
    assert dialog.isVisible()
    return dialog


def load_through_dialog(qtbot, window, source) -> None:
    dialog = open_dialog(window)
    dialog.source.setText(str(source))
    dialog.load_button.click()
    wait_idle(qtbot, window.session)


@pytest.fixture
def ready(qtbot, window, tmp_path):
    """The window with an SAE loaded through the dialog and PROMPT's features read."""
    folder = make_sae(tmp_path / "sae", 32, 48, HOOK)
    load_through_dialog(qtbot, window, folder)
    session = window.session
    wait_for_run(qtbot, session, PROMPT)
    window.tabs.setCurrentWidget(window.features)  # the features are read while it shows
    qtbot.waitUntil(lambda: session.state.features.result is not None, timeout=GUI_TIMEOUT_MS)
    return window, folder


def test_before_an_sae_the_tab_says_how_to_load_one(window):
    tab = window.features
    assert tab.pages.currentIndex() == 0
    assert "No sparse autoencoder loaded" in tab.empty.text()
    assert "Model ▸ Sparse autoencoder…" in tab.empty.text()


def test_a_bad_sae_through_the_dialog_is_one_message_and_nothing_lost(qtbot, window, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cfg.json").write_text("{not json")
    load_through_dialog(qtbot, window, bad)
    assert window.session.state.features.loaded is None
    assert "is not valid JSON" in window.message_bar.text()
    assert window.features.pages.currentIndex() == 0


def test_the_dialog_offers_the_public_releases(window):
    dialog = open_dialog(window)
    dialog.use_release()
    assert dialog.source.text() == "jbloom/GPT2-Small-SAEs-Reformatted:blocks.0.hook_resid_pre"
    assert "Not in the Hugging Face cache" in dialog.note.text()


def test_the_tabs_numbers_are_gpt_cores_features_of_the_same_run(ready):
    window, folder = ready
    tab, session = window.features, window.session
    assert tab.pages.currentIndex() == 1
    expected = features(session.model, list(session.result.key.token_ids), load_sae(folder))
    readout = expected.readout
    for t in range(readout.n_tokens):
        assert tab.table.item(t, 2).text() == str(readout.l0[t])
        assert tab.table.item(t, 3).value == pytest.approx(readout.recon_fraction[t], abs=1e-6)
        assert tab.table.item(t, 4).text().split()[0] == str(readout.top_ids[t, 0])
    union = np.unique(readout.top_ids[:, :5][readout.top_acts[:, :5] > 0])
    np.testing.assert_array_equal(tab.columns, union)
    dense = np.stack([readout.feature_acts(f) for f in union], axis=1)
    np.testing.assert_allclose(tab.heatmap.matrix, dense, atol=1e-6)
    assert f"recovered {expected.losses.recovered:.1%}" in tab.losses.text()


def test_a_click_on_a_feature_opens_its_card(qtbot, ready):
    window, folder = ready
    tab, session = window.features, window.session
    col = len(tab.columns) // 2
    feature = int(tab.columns[col])
    tab.heatmap.clicked.emit(0, col)
    qtbot.waitUntil(lambda: session.state.features.card is not None, timeout=GUI_TIMEOUT_MS)
    card = tab.card
    assert card.feature == feature and card.title.text() == f"Feature {feature:,}"
    acts = session.state.features.result.run.readout.feature_acts(feature)
    np.testing.assert_allclose(card.strip.weights, acts / acts.max(), atol=1e-6)
    effect = logit_effect(session.model, load_sae(folder), feature)
    top = effect.topk(10)
    assert card.up.rowCount() == 10
    assert card.up.item(0, 1).value == pytest.approx(float(top.values[0]), abs=1e-5)


def test_steering_from_the_card_shows_a_plain_runs_delta_loss(qtbot, ready):
    window, folder = ready
    tab, session = window.features, window.session
    feature = int(tab.columns[0])
    tab.open_card(feature)
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        tab.card.steerChanged.emit(feature, 3.0)
    wait_idle(qtbot, session)
    ids = torch.tensor([list(session.result.key.token_ids)])
    vector = 3.0 * load_sae(folder).W_dec[feature]
    losses = []
    for added in (torch.zeros(32), vector):  # a plain forward hook at block 0's output
        handle = session.model.trf_blocks[0].register_forward_hook(lambda m, i, o, a=added: o + a)
        try:
            with torch.no_grad():
                logits = session.model(ids)[0]
        finally:
            handle.remove()
        losses.append(float(F.cross_entropy(logits[:-1], ids[0, 1:])))
    assert window.effect.delta_loss.text() == format_signed(losses[1] - losses[0])
    assert "SAE steered" in window.effect.switched_off.text()
    window.effect.restore.click()
    wait_idle(qtbot, session)
    assert session.state.features.switches.is_empty
    assert window.effect.switched_off.text() == "Everything is on."


def test_a_corpus_scan_lists_each_features_top_contexts(qtbot, ready, tmp_path):
    window, _ = ready
    tab, session = window.features, window.session
    session.features.scan_cache = tmp_path / "scans"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Once upon a time there was a fox. The dog barked at the moon. " * 20)
    session.features.scan(str(corpus))
    wait_idle(qtbot, session)
    scan = session.state.features.scan.result
    feature = int(np.argmax(scan.top_acts[:, 0]))
    tab.open_card(feature)
    wait_idle(qtbot, session)
    text = tab.card.contexts.toPlainText()
    assert text.startswith(f"{scan.top_acts[feature, 0]:7.3f}".strip())
    window_index, position = scan.top_where[feature, 0]
    token = session.tokenizer.decode([int(scan.windows[window_index, position])])
    highlighted = re.findall(r'background-color:#ffd43b;">(.*?)</span>', tab.card.contexts.toHtml())
    assert html.unescape(highlighted[0]) == token
    assert "tokens" in tab.scan_note.text()


def test_the_sae_site_is_marked_in_the_architecture_tree(ready):
    window, _ = ready
    session = window.session
    index = section_of_stage(session.state, site_of(HOOK, session.config).key)
    marked = [i for i, item in enumerate(window.navigator.section_items) if "◆ SAE" in item.text(0)]
    assert marked == [index]


def test_a_model_the_sae_no_longer_fits_gives_the_message(qtbot, ready):
    window, _ = ready
    session = window.session
    wider = GPTConfig(vocab_size=50257, context_length=64, emb_dim=64, n_heads=4, n_layers=2)
    with qtbot.waitSignal(session.modelChanged, timeout=GUI_TIMEOUT_MS):
        session.load_weights(None, wider, seed=1)
    wait_idle(qtbot, session)
    assert window.features.pages.currentIndex() == 0
    assert "no longer fits" in window.features.empty.text()
    assert "has 64" in window.features.empty.text()
    assert not any("◆ SAE" in item.text(0) for item in window.navigator.section_items)


def test_a_hub_source_loads_from_the_cache_offline_and_says_what_to_download(
    qtbot, window, hub_cache
):
    repo, folder = "someone/gpt2-saes", HOOK
    root = hub_cache / "models--someone--gpt2-saes"
    make_sae(root / "snapshots" / ("a" * 40) / folder, 32, 48, HOOK)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text("a" * 40)
    dialog = open_dialog(window)
    dialog.source.setText(f"{repo}:{folder}")
    assert dialog.note.text().startswith("In the Hugging Face cache")
    dialog.load_button.click()
    wait_idle(qtbot, window.session)
    assert window.session.state.features.loaded.sae.source == f"{repo}:{folder}"
    load_through_dialog(qtbot, window, f"{repo}:blocks.0.hook_resid_pre")  # not cached
    message = window.message_bar.text()
    assert "hf download someone/gpt2-saes --include 'blocks.0.hook_resid_pre/*'" in message
    assert "The SAE loaded before stays." in message


def test_the_features_are_read_only_while_the_tab_shows(qtbot, window, tmp_path):
    load_through_dialog(qtbot, window, make_sae(tmp_path / "sae", 32, 48, HOOK))
    session = window.session
    window.tabs.setCurrentWidget(window.attribution)
    wait_for_run(qtbot, session, PROMPT)
    wait_idle(qtbot, session)
    assert session.state.features.result is None  # no forward spent on a hidden tab
    window.tabs.setCurrentWidget(window.features)
    qtbot.waitUntil(lambda: session.state.features.result is not None, timeout=GUI_TIMEOUT_MS)
    assert session.state.features.result.key == fs.current_key(session.state)
    assert window.features.table.rowCount() == len(session.result.key.token_ids)
