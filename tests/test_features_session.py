"""The Features tab's session side: loading an SAE as a job (good, bad, cancelled), the
features of the run on screen equal gpt_core's features(), feature switches as
interventions (Δ loss equals a plain run with the same vector written at the site by a
hook in the test), results of an old prompt dropped, and an SAE that no longer fits after
a model change."""

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explorer.state import features as fs
from explorer.state.analysis import AttributionSettings
from gpt_core import Cancelled, GPTConfig
from gpt_core.sae import features, load_sae
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle
from tests.sae_helpers import make_sae

HOOK = "blocks.1.hook_resid_pre"  # block 0's output in the tiny model (2 blocks, 32 wide)
D_SAE = 48


@pytest.fixture
def sae_folder(tmp_path):
    return make_sae(tmp_path / "sae", 32, D_SAE, HOOK)


def messages(session):
    said = []
    session.message.connect(lambda level, text: said.append((level, text)))
    return said


def load(qtbot, session, source):
    session.features.load(str(source))
    wait_idle(qtbot, session)


def test_loading_an_sae_puts_it_in_the_state_and_says_so(qtbot, session, sae_folder):
    said = messages(session)
    load(qtbot, session, sae_folder)
    loaded = session.state.features.loaded
    assert loaded is not None and loaded.misfit == "" and loaded.sae.d_sae == D_SAE
    assert any(level == "status" and "SAE loaded" in text and HOOK in text for level, text in said)


def test_a_bad_sae_is_the_loaders_message_and_the_loaded_one_stays(qtbot, session, tmp_path,
                                                                   sae_folder):  # fmt: skip
    load(qtbot, session, sae_folder)
    before = session.state.features.loaded
    bad = make_sae(tmp_path / "bad", 32, D_SAE, "blocks.7.hook_resid_pre")  # no block 7
    said = messages(session)
    load(qtbot, session, bad)
    assert session.state.features.loaded is before
    errors = [text for level, text in said if level == "error"]
    assert len(errors) == 1 and "this model has 2 blocks" in errors[0]
    assert "The SAE loaded before stays." in errors[0]


def test_a_non_gpt2_sae_loads_with_a_warning(qtbot, session, tmp_path):
    folder = make_sae(tmp_path / "other", 32, D_SAE, HOOK)
    cfg = (folder / "cfg.json").read_text().replace("gpt2-small", "pythia-70m")
    (folder / "cfg.json").write_text(cfg)
    said = messages(session)
    load(qtbot, session, folder)
    assert session.state.features.loaded is not None
    assert any(level == "warning" and "pythia-70m" in text for level, text in said)


def test_cancelling_a_load_keeps_the_state_and_says_so(qtbot, session, monkeypatch):
    started = threading.Event()

    def slow_load(source, cfg, progress=None, cancel=None):
        started.set()
        while not cancel():
            progress(None, "downloading")
            threading.Event().wait(0.01)
        raise Cancelled("download cancelled")

    monkeypatch.setattr("explorer.session.jobs.features.load_sae", slow_load)
    said = messages(session)
    session.features.load("jbloom/GPT2-Small-SAEs-Reformatted:blocks.1.hook_resid_pre")
    qtbot.waitUntil(started.is_set, timeout=GUI_TIMEOUT_MS)
    session.cancel("sae_load")
    wait_idle(qtbot, session)
    assert session.state.features.loaded is None
    assert ("info", "Loading the SAE cancelled.") in said


def test_the_features_of_the_run_equal_gpt_cores(qtbot, session, sae_folder):
    load(qtbot, session, sae_folder)
    wait_for_run(qtbot, session, "The cat sat on the mat because it was warm")
    qtbot.waitUntil(lambda: session.state.features.result is not None, timeout=GUI_TIMEOUT_MS)
    shown = session.state.features.result.run
    ids = list(session.result.key.token_ids)
    expected = features(session.model, ids, load_sae(sae_folder))
    np.testing.assert_array_equal(shown.readout.top_ids, expected.readout.top_ids)
    np.testing.assert_allclose(shown.readout.top_acts, expected.readout.top_acts, atol=1e-6)
    np.testing.assert_array_equal(shown.readout.l0, expected.readout.l0)
    assert shown.losses.spliced == pytest.approx(expected.losses.spliced, abs=1e-6)


def _loss_with_hook(model, ids, vector):
    """Mean next-token loss with `vector` added to block 0's output (the site), by a plain
    forward hook written here."""
    handle = model.trf_blocks[0].register_forward_hook(lambda m, i, out: out + vector)
    try:
        with torch.no_grad():
            logits = model(torch.tensor([ids]))[0]
    finally:
        handle.remove()
    return float(F.cross_entropy(logits[:-1], torch.tensor(ids[1:])))


def test_steering_a_feature_gives_the_delta_loss_of_a_plain_run(qtbot, session, sae_folder):
    load(qtbot, session, sae_folder)
    wait_for_run(qtbot, session, "The cat sat on the mat")
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.features.steer(5, 4.0)
    wait_idle(qtbot, session)
    ids = list(session.result.key.token_ids)
    sae = load_sae(sae_folder)
    model = session.model
    steered = _loss_with_hook(model, ids, 4.0 * sae.W_dec[5])
    clean = _loss_with_hook(model, ids, torch.zeros(32))
    assert session.result.comparison.delta_loss == pytest.approx(steered - clean, abs=1e-5)
    assert abs(steered - clean) > 1e-4  # the push changes something
    session.restore_all()
    wait_idle(qtbot, session)
    assert session.state.features.switches.is_empty and session.result.comparison is None


def test_ablating_a_feature_is_the_run_without_its_contribution(qtbot, session, sae_folder):
    load(qtbot, session, sae_folder)
    wait_for_run(qtbot, session, "The cat sat on the mat")
    qtbot.waitUntil(lambda: session.state.features.result is not None, timeout=GUI_TIMEOUT_MS)
    readout = session.state.features.result.run.readout
    feature = int(readout.top_ids[2, 0])  # active at token 2
    acts = readout.feature_acts(feature)
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.features.toggle_ablate(feature)
    wait_idle(qtbot, session)
    sae, ids = load_sae(sae_folder), list(session.result.key.token_ids)
    removed = -torch.tensor(acts)[:, None] * sae.W_dec[feature]  # [T, d_in]
    expected = _loss_with_hook(session.model, ids, removed) - _loss_with_hook(
        session.model, ids, torch.zeros(32)
    )
    assert session.result.comparison.delta_loss == pytest.approx(expected, abs=1e-5)


def test_features_read_for_an_old_prompt_are_dropped(qtbot, session, sae_folder):
    load(qtbot, session, sae_folder)
    wait_for_run(qtbot, session, "An old prompt")
    qtbot.waitUntil(lambda: session.state.features.result is not None, timeout=GUI_TIMEOUT_MS)
    old = session.state.features.result
    wait_for_run(qtbot, session, "A new prompt, longer than the old one")
    qtbot.waitUntil(
        lambda: (
            session.state.features.result is not old and session.state.features.result is not None
        ),
        timeout=GUI_TIMEOUT_MS,
    )
    state = session.state
    assert fs.apply_result(state, old) is state  # the old prompt's features: dropped
    assert state.features.result.run.readout.n_tokens == len(state.result.key.token_ids)


def test_a_model_change_the_sae_no_longer_fits_says_so(qtbot, session, sae_folder):
    load(qtbot, session, sae_folder)
    session.features.steer(3, 1.0)
    wait_idle(qtbot, session)
    wider = GPTConfig(vocab_size=50257, context_length=64, emb_dim=64, n_heads=4, n_layers=2)
    with qtbot.waitSignal(session.modelChanged, timeout=GUI_TIMEOUT_MS):
        session.load_weights(None, wider, seed=1)
    wait_for_run(qtbot, session, "The cat")
    features_state = session.state.features
    assert "has 64" in features_state.loaded.misfit
    assert features_state.switches.is_empty and features_state.usable is None
    assert features_state.result is None


def test_a_cancelled_scan_says_so_and_the_next_one_resumes_it(qtbot, session, sae_folder,
                                                              tmp_path, monkeypatch):  # fmt: skip
    import gpt_core.sae.scan as scan_module

    monkeypatch.setattr(scan_module, "BATCH_TOKENS", 64)  # one window per batch
    load(qtbot, session, sae_folder)
    session.features.scan_cache = tmp_path / "scans"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The dog barked at the moon and the fox ran away. " * 150)
    said, reports = messages(session), []
    session.progress.connect(lambda fraction, text: reports.append((fraction, text)))
    session.features.scan(str(corpus))
    qtbot.waitUntil(lambda: len(reports) >= 2, timeout=GUI_TIMEOUT_MS)
    session.cancel("feature_scan")
    wait_idle(qtbot, session)
    assert session.state.features.scan is None
    assert any("resumes it" in text for level, text in said if level == "info")
    fraction, text = reports[-1]
    assert 0 < fraction < 1 and "tokens/s" in text and " / " in text
    reports.clear()
    session.features.scan(str(corpus))
    wait_idle(qtbot, session)
    scan = session.state.features.scan
    assert scan is not None and scan.result.tokens == scan.result.windows.size
    assert reports[0][0] > 1 / scan.result.windows.shape[0]  # resumed, not started again


def test_attribution_explains_the_run_with_its_feature_switches(qtbot, session, sae_folder):
    load(qtbot, session, sae_folder)
    wait_for_run(qtbot, session, "The cat sat on the mat")
    with qtbot.waitSignal(session.traceChanged, timeout=GUI_TIMEOUT_MS):
        session.features.steer(5, 4.0)
    wait_idle(qtbot, session)
    trace = session.state.trace
    target = int(np.argmax(trace["logits/last"]))
    session.attribution.set_settings(AttributionSettings(target=target, methods=("grad_norm",)))
    with qtbot.waitSignal(session.attributionChanged, timeout=GUI_TIMEOUT_MS):
        session.attribution.run()
    wait_idle(qtbot, session)
    explained = session.state.attribution_run.result
    assert explained.value == pytest.approx(float(trace["logits/last"][target]), abs=1e-4)
