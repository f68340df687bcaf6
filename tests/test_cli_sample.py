"""`sample`: probs.npy is the distribution the model's own logits give at the position
under transformers' warpers, samples.json its seeded draws; bad settings are one line."""

import json

import numpy as np
import pytest
import torch

from gpt_core import get_tokenizer, load_model
from tests.cli_helpers import TINY, assert_one_error_line, run_cli
from tests.test_sampling import _transformers

PROMPT = "The cat sat on the"


def _sample(tmp_path, *options: str):
    out = tmp_path / "out"
    result = run_cli("sample", *TINY, "--prompt", PROMPT, "--out", str(out), *options)
    assert result.returncode == 0, result.stderr
    samples = json.loads((out / "samples.json").read_text())
    return np.load(out / "probs.npy"), samples


@pytest.fixture(scope="module")
def model_logits():
    """The tiny model's logits at every position of the prompt, from a plain forward."""
    model, _ = load_model(None, "tiny", seed=0)
    ids = get_tokenizer().encode(PROMPT)
    with torch.no_grad():
        return model(torch.tensor([ids]))[0]  # [T, vocab]


def test_probs_and_draws_at_a_position(tmp_path, model_logits):
    probs, samples = _sample(
        tmp_path, "--temperature", "0.8", "--top-k", "50", "--top-p", "0.9",
        "--position", "2", "--seed", "5", "--n", "40",
    )  # fmt: skip
    assert probs.dtype == np.float32 and probs.shape == (50257,)
    expected = _transformers(model_logits[2], 0.8, 50, 0.9)
    assert np.abs(probs - expected).max() < 1e-6
    assert samples["position"] == 2 and samples["seed"] == 5
    assert (samples["temperature"], samples["top_k"], samples["top_p"]) == (0.8, 50, 0.9)
    assert len(samples["ids"]) == 40 and all(probs[i] > 0 for i in samples["ids"])
    assert samples["tokens"] == [get_tokenizer().decode([i]) for i in samples["ids"]]
    again = _sample(tmp_path, "--temperature", "0.8", "--top-k", "50", "--top-p", "0.9",
                    "--position", "2", "--seed", "5", "--n", "40")[1]  # fmt: skip
    other = _sample(tmp_path, "--temperature", "0.8", "--top-k", "50", "--top-p", "0.9",
                    "--position", "2", "--seed", "6", "--n", "40")[1]  # fmt: skip
    assert again["ids"] == samples["ids"] != other["ids"]


def test_defaults_read_the_last_position_at_temperature_one(tmp_path, model_logits):
    probs, samples = _sample(tmp_path)
    expected = torch.softmax(model_logits[-1], -1).numpy()
    assert np.abs(probs - expected).max() < 1e-6
    assert samples["position"] == model_logits.shape[0] - 1 and len(samples["ids"]) == 1
    assert samples["top_k"] is None and samples["top_p"] is None


def test_temperature_zero_writes_the_one_hot_greedy_distribution(tmp_path, model_logits):
    probs, samples = _sample(tmp_path, "--temperature", "0", "--n", "3")
    greedy = int(model_logits[-1].argmax())
    assert probs[greedy] == 1 and np.count_nonzero(probs) == 1
    assert samples["ids"] == [greedy] * 3


def test_weights_seed_is_the_models_and_seed_the_draws(tmp_path):
    a = _sample(tmp_path)[0]
    b = _sample(tmp_path, "--weights-seed", "1")[0]
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [("--temperature", "-0.5", "temperature"), ("--temperature", "nan", "temperature"),
     ("--top-k", "0", "top_k"), ("--top-p", "0", "top_p"), ("--top-p", "1.5", "top_p"),
     ("--position", "99", "outside the prompt"), ("--n", "0", "--n")],
)  # fmt: skip
def test_out_of_range_settings_are_one_line(tmp_path, option, value, fragment):
    out = tmp_path / "out"
    result = run_cli("sample", *TINY, "--prompt", PROMPT, "--out", str(out), option, value)
    assert_one_error_line(result, fragment)
    assert not out.exists()
