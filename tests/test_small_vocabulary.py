"""A model whose vocabulary is smaller than the tokenizer's (100 ids here): a prompt, target,
foil, baseline, answer or distractor past it is one line, "token id N is outside the
vocabulary", from every command and from the API the tabs call; never an IndexError."""

import pytest

from gpt_core import GPTConfig, PromptError, capture, load_model, save_model
from gpt_core.analysis import sublayer_lens
from gpt_core.analysis.input_attribution import Explained, attribute
from tests.cli_helpers import assert_one_error_line, run_cli

IN_VOCAB = "a+b"  # ids 64, 10, 65
PAST = "The cat"  # ids 464, 3797


@pytest.fixture(scope="module")
def small_model():
    model, _ = load_model(None, GPTConfig.preset("tiny").replace(vocab_size=100), seed=2)
    return model


@pytest.fixture(scope="module")
def small_weights(small_model, tmp_path_factory):
    return str(save_model(small_model, tmp_path_factory.mktemp("small") / "small.safetensors"))


CASES = [
    ("attribute", "--prompt", PAST, "--target", "a"),
    ("attribute", "--prompt", IN_VOCAB, "--target", " the"),
    ("attribute", "--prompt", IN_VOCAB, "--target", "a", "--foil", " the"),
    ("attribute", "--prompt", IN_VOCAB, "--target", "a", "--baseline", " the"),
    ("lens", "--prompt", PAST),
    ("lens", "--prompt", IN_VOCAB, "--target", " the"),
    ("export", "--prompt", PAST),
    ("attention", "--prompt", PAST, "--layer", "0", "--head", "0"),
    ("patch", "--clean", PAST, "--corrupted", "A cat"),
    ("patch", "--clean", IN_VOCAB, "--corrupted", "a+c", "--answer", " the"),
]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(case) for case in CASES])
def test_every_command_says_the_id_is_outside_the_vocabulary(args, small_weights, tmp_path):
    out = tmp_path / "out"
    result = run_cli(*args, "--out", str(out), "--weights", small_weights)
    assert_one_error_line(result, "is outside the vocabulary (0..99)")
    assert not out.exists()


def test_the_commands_still_run_inside_the_vocabulary(small_weights, tmp_path):
    args = ("--prompt", IN_VOCAB, "--target", "a", "--weights", small_weights)
    assert run_cli("lens", *args, "--out", str(tmp_path / "l")).returncode == 0
    assert run_cli("attribute", *args, "--out", str(tmp_path / "a")).returncode == 0


def test_the_tabs_api_refuses_ids_past_the_vocabulary(small_model):
    ids = [64, 10, 65]
    with pytest.raises(PromptError, match="token id 262 is outside the vocabulary"):
        sublayer_lens(small_model, capture(small_model, ids), target=262)
    for explained, baseline in ((Explained(262, None, 2), None), (Explained(5, 300, 2), None),
                                (Explained(5, None, 2), 400)):  # fmt: skip
        with pytest.raises(PromptError, match="is outside the vocabulary"):
            attribute(small_model, ids, explained, baseline_token=baseline)
    with pytest.raises(PromptError, match="token id 464 is outside the vocabulary"):
        attribute(small_model, [464, 10], Explained(5, None, 1))
