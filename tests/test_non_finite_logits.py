"""Weights holding one NaN give NaN logits: nothing is ranked or picked as if it were a
fact. The lens marks such points (-1, NaN), patching refuses its defaults with one line,
and every summary.json stays JSON (null for a non-finite number)."""

import json

import numpy as np
import pytest
import torch

from gpt_core import capture, get_tokenizer, load_model, save_model
from gpt_core.analysis import sublayer_lens
from gpt_core.analysis.patching import PatchError, default_tokens
from gpt_core.analysis.sublayer_lens import NOT_FINITE
from tests.cli_helpers import assert_one_error_line, run_cli

PROMPT = "When Mary and John went to the store, John gave a drink to"
CORRUPTED = "When Mary and John went to the store, Mary gave a drink to"


def _nan_model():
    model, _ = load_model(None, "tiny", seed=3)
    with torch.no_grad():
        model.final_norm.scale[0] = float("nan")  # every logit is NaN
    return model


@pytest.fixture(scope="module")
def nan_weights(tmp_path_factory):
    return str(save_model(_nan_model(), tmp_path_factory.mktemp("nan") / "nan.safetensors"))


def _strict_json(path):
    """json.loads that refuses NaN and Infinity, as every other JSON reader does."""
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(name))


def test_lens_marks_points_whose_logits_are_not_finite():
    model = _nan_model()
    ids = get_tokenizer().encode(PROMPT)
    lens = sublayer_lens(model, capture(model, ids), target=7)
    assert (lens.target_rank == NOT_FINITE).all()  # old: 0, "the target is top"
    assert (lens.top1_ids == NOT_FINITE).all()
    assert np.isnan(lens.top1_probs).all() and np.isnan(lens.entropy).all()


def test_lens_keeps_finite_points_as_they_were(tiny_model, tokenizer):
    ids = tokenizer.encode(PROMPT)
    lens = sublayer_lens(tiny_model, capture(tiny_model, ids), target=7)
    assert (lens.top1_ids >= 0).all() and (lens.target_rank >= 0).all()


def test_patching_refuses_default_tokens_from_nan_logits():
    tok = get_tokenizer()
    clean, corrupted = tok.encode(PROMPT), tok.encode(CORRUPTED)
    with pytest.raises(PatchError, match="logits are not finite"):
        default_tokens(_nan_model(), clean, corrupted, len(clean) - 1)


def test_patch_command_refuses_defaults_and_writes_nothing(nan_weights, tmp_path):
    out = tmp_path / "out"
    result = run_cli("patch", "--clean", PROMPT, "--corrupted", CORRUPTED, "--out", str(out),
                     "--weights", nan_weights)  # fmt: skip
    result.stderr = "".join(
        line for line in result.stderr.splitlines(True) if not line.startswith("warning: ")
    )
    assert_one_error_line(result, "logits are not finite")
    assert not out.exists()


def test_patch_summary_is_json_with_null_for_nan(nan_weights, tmp_path):
    result = run_cli("patch", "--clean", PROMPT, "--corrupted", CORRUPTED, "--out", str(tmp_path),
                     "--weights", nan_weights, "--answer", " Mary", "--distractor", " John")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = _strict_json(tmp_path / "summary.json")
    assert summary["clean_metric"] is None and summary["corrupted_metric"] is None


def test_attribute_summary_is_json_with_null_for_nan(nan_weights, tmp_path):
    result = run_cli("attribute", "--prompt", PROMPT, "--target", " Mary", "--out", str(tmp_path),
                     "--weights", nan_weights, "--method", "integrated_gradients")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = _strict_json(tmp_path / "summary.json")
    assert summary["value"] is None


def test_lens_command_writes_minus_one_ranks(nan_weights, tmp_path):
    result = run_cli("lens", "--prompt", PROMPT, "--target", " Mary", "--out", str(tmp_path),
                     "--weights", nan_weights)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (np.load(tmp_path / "lens_target_rank.npy") == -1).all()
    assert (np.load(tmp_path / "lens_top1_ids.npy") == -1).all()
