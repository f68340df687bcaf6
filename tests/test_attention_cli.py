"""`gpt-explorer attention`: one head's arrays and one pair's numbers, checked against a
float64 numpy recomputation from LN1's output and the model's own W_query, W_key, W_value
(not the probe points that recorded them); bad input is one error line and no files."""

import json

import numpy as np
import pytest

from gpt_core import capture, get_tokenizer, load_model, stage_key
from tests.cli_helpers import assert_one_error_line, run_cli

PROMPT = "The cat sat on the mat because it was tired of the rain"
MODEL = ("--preset", "tiny", "--seed", "3")
LAYER, HEAD = 1, 2


@pytest.fixture(scope="module")
def reference():
    """q, k, v of the head from LN1's output and the weights, scores, weights, context."""
    model, cfg = load_model(None, "tiny", seed=3)
    ids = get_tokenizer().encode(PROMPT)
    trace = capture(model, ids)
    x = trace[stage_key("ln1/out", LAYER)].astype(np.float64)  # [T, E]
    att = model.trf_blocks[LAYER].att
    d, cols = cfg.head_dim, slice(HEAD * cfg.head_dim, (HEAD + 1) * cfg.head_dim)

    def project(linear) -> np.ndarray:  # [T, d]: x W^T, the head's columns
        return (x @ linear.weight.detach().double().numpy().T)[:, cols]

    q, k, v = project(att.W_query), project(att.W_key), project(att.W_value)
    scores = q @ k.T / np.sqrt(d)  # [T, T]
    scores[np.triu_indices(len(ids), 1)] = -np.inf
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return {"queries": q, "keys": k, "values": v, "scores": scores, "weights": weights,
            "context": weights @ v, "n": len(ids), "d": d}  # fmt: skip


def run_attention(tmp_path, *extra):
    out = tmp_path / "out"
    args = ("attention", "--prompt", PROMPT, "--layer", str(LAYER), "--head", str(HEAD))
    return run_cli(*args, "--out", str(out), *MODEL, *extra), out


def test_the_head_arrays_equal_a_recomputation_from_the_weights(tmp_path, reference):
    result, out = run_attention(tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("queries", "keys", "values", "scores", "weights", "context"):
        array = np.load(out / f"{name}.npy")
        assert array.dtype == np.float32, name
        expected = reference[name]
        assert array.shape == expected.shape, name
        finite = np.isfinite(expected)
        assert np.array_equal(np.isfinite(array), finite), name  # -inf exactly above the diagonal
        assert np.allclose(array[finite], expected[finite], rtol=1e-5, atol=1e-6), name


def test_the_pair_recomputes_its_weight(tmp_path, reference):
    result, out = run_attention(tmp_path, "--query", "7", "--key", "3")
    assert result.returncode == 0, result.stderr
    pair = json.loads((out / "pair.json").read_text())
    q, k, d = np.array(pair["q"]), np.array(pair["k"]), reference["d"]
    assert (pair["query"], pair["key"], pair["masked"]) == (7, 3, False)
    assert np.allclose(q, reference["queries"][7], atol=1e-6)
    assert np.allclose(k, reference["keys"][3], atol=1e-6)
    assert np.allclose(pair["products"], q * k, atol=1e-9)
    assert pair["dot"] == pytest.approx(sum(pair["products"]), abs=1e-9)
    assert pair["scale"] == pytest.approx(1 / np.sqrt(d))
    assert pair["score"] == pytest.approx(reference["scores"][7, 3], rel=1e-5)
    row = reference["scores"][7, :8]
    assert pair["row_max"] == pytest.approx(row.max(), rel=1e-5)
    assert pair["exp_sum"] == pytest.approx(np.exp(row - row.max()).sum(), rel=1e-5)
    weight = np.exp(pair["score"] - pair["row_max"]) / pair["exp_sum"]
    assert weight == pytest.approx(pair["weight"], abs=1e-6)
    assert pair["weight"] == pytest.approx(reference["weights"][7, 3], abs=1e-6)
    assert np.allclose(pair["context"], reference["context"][7], atol=1e-6)


def test_a_key_after_the_query_is_masked_and_the_default_key_weighs_most(tmp_path, reference):
    result, out = run_attention(tmp_path, "--query", "2", "--key", "5")
    assert result.returncode == 0, result.stderr
    pair = json.loads((out / "pair.json").read_text())
    assert pair["masked"] is True and pair["weight"] == 0.0
    result, out = run_attention(tmp_path)
    pair = json.loads((out / "pair.json").read_text())
    last = reference["n"] - 1
    assert pair["query"] == last
    assert pair["key"] == int(np.argmax(reference["weights"][last]))


@pytest.mark.parametrize("option", ["--query", "--key"])
@pytest.mark.parametrize("past_the_end", [0, 50])
def test_a_position_out_of_range_is_one_error_line_and_no_files(
    tmp_path, reference, option, past_the_end
):
    n = reference["n"]
    bad = str(n + past_the_end)
    result, out = run_attention(tmp_path, option, bad)
    assert_one_error_line(
        result, f"{option} {bad} is out of range: the positions of this {n}-token prompt are 0 to "
        f"{n - 1}"
    )  # fmt: skip
    assert not out.exists()
    result, out = run_attention(tmp_path, option, "-1")
    assert_one_error_line(result, f"{option} -1 is out of range")
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--layer", "2", "this model's blocks are 0 to 1"), ("--head", "4", "heads are 0 to 3")],
)
def test_a_block_or_head_out_of_range_is_one_error_line_and_no_files(
    tmp_path, option, value, message
):
    args = {"--layer": str(LAYER), "--head": str(HEAD), option: value}
    out = tmp_path / "out"
    result = run_cli("attention", "--prompt", PROMPT, *[a for kv in args.items() for a in kv],
                     "--out", str(out), *MODEL)  # fmt: skip
    assert_one_error_line(result, message)
    assert not out.exists()
