"""A model with more token ids than the tokenizer has strings (nanoGPT pads GPT-2's 50,257 to
50,304): such ids show as #50300 everywhere, through Tokenizer.display, are never picked as
a default token, and a one-line note says so when the model loads."""

import json

import numpy as np
import pytest
import torch

from gpt_core import GPTConfig, get_tokenizer, load_model, save_model
from gpt_core.analysis.patching import default_tokens
from tests.cli_helpers import run_cli
from tests.conftest import GUI_TIMEOUT_MS, wait_for_run, wait_idle
from tests.test_patching_gui import CLEAN, CORRUPTED, _set_up

PADDED = 50_300  # the most likely next token at every position, and it has no string


def _padded_model():
    model, _ = load_model(None, GPTConfig.preset("tiny").replace(vocab_size=50_304), seed=4)
    with torch.no_grad():  # the final norm's output has 100 in column 0, which only PADDED reads
        model.final_norm.shift[0] = 100.0
        model.out_head.weight[:, 0] = 0.0
        model.out_head.weight[PADDED, 0] = 1.0
    return model


@pytest.fixture(scope="module")
def padded_weights(tmp_path_factory):
    return save_model(_padded_model(), tmp_path_factory.mktemp("padded") / "padded.safetensors")


def test_an_id_without_a_string_is_shown_by_number(tokenizer):
    assert tokenizer.display(56_857) == "#56857"
    assert tokenizer.displays([464, PADDED]) == ["The", "#50300"]
    assert tokenizer.decode([464, PADDED]) == "The#50300"
    assert tokenizer.token_bytes(PADDED) == b""


def test_default_tokens_skip_ids_without_a_string():
    model, tok = _padded_model(), get_tokenizer()
    clean, corrupted = tok.encode(CLEAN), tok.encode(CORRUPTED)
    assert int(model(torch.tensor([clean]))[0, -1].argmax()) == PADDED
    answer, distractor = default_tokens(model, clean, corrupted, len(clean) - 1)
    assert answer < tok.size and distractor < tok.size and answer != distractor


def test_patch_command_names_the_defaults_and_notes_the_padding(padded_weights, tmp_path):
    result = run_cli("patch", "--clean", CLEAN, "--corrupted", CORRUPTED, "--sweep", "resid",
                     "--out", str(tmp_path), "--weights", str(padded_weights))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("note: ")
    assert "50,304 token ids" in result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["answer_id"] < 50_257 and summary["distractor_id"] < 50_257


def test_lens_and_attribute_commands_run(padded_weights, tmp_path):
    args = ("--prompt", "The cat sat", "--weights", str(padded_weights))
    assert run_cli("lens", *args, "--target", " mat", "--out", str(tmp_path / "l")).returncode == 0
    assert (np.load(tmp_path / "l" / "lens_top1_ids.npy")[-1] == PADDED).all()
    result = run_cli("attribute", *args, "--target", " mat", "--out", str(tmp_path / "a"))
    assert result.returncode == 0, result.stderr
    heads = run_cli("heads", "--out", str(tmp_path / "h"), "--weights", str(padded_weights))
    assert heads.returncode == 0, heads.stderr


def test_the_window_shows_and_patches_a_padded_model(window, qtbot, padded_weights):
    session = window.session
    with qtbot.waitSignal(session.modelChanged, timeout=GUI_TIMEOUT_MS):
        session.load_weights(str(padded_weights))
    wait_idle(qtbot, session)
    assert "50,304 token ids" in window.message_bar.text()
    wait_for_run(qtbot, session, CLEAN)  # pytest-qt fails the test on any exception
    for index in range(len(session.sections)):
        session.select_section(index)
    wait_idle(qtbot, session)
    session = _set_up(window, sweeps=("resid",))
    window.patching.setup.run_button.click()
    qtbot.waitUntil(lambda: session.state.patch_run is not None, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    assert session.state.patch_run.result.metric.answer < 50_257


def test_generation_never_picks_an_id_without_a_string():
    from explorer.session.jobs.model_work import next_token
    from explorer.state.sampling import GenerationSettings

    logits = np.zeros(50_304, dtype=np.float32)
    logits[50_300] = 100.0  # a padded id the model likes best
    logits[262] = 1.0
    trace = {"logits/last": logits}  # what next_token reads of a trace
    assert next_token(trace, GenerationSettings(), 0).token_id == 262
    sampled = GenerationSettings(temperature=1.0, top_k=5, seed=3)
    assert all(next_token(trace, sampled, n).token_id < 50_257 for n in range(20))
