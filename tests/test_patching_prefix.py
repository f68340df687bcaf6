"""Prefix reuse in activation patching: a patched run computes only the positions from its
first change on, over the base run's keys and values before it. Checked against the
one-full-run-per-cell reference (tests/patching_reference.py) in both directions, at a
prompt pair that differs from its first token (every prefix the base run's own) and, with
batches forced small, at the middle-differing pair of test_patching (runs with different
starts packed together and apart)."""

import dataclasses

import numpy as np
import pytest

from gpt_core.analysis.patching import SWEEPS, Metric, Receiver, patch
from tests.patching_reference import reference_path, reference_sweep, sharpened
from tests.probe_helpers import CFG, assert_close, probe_model

# the first token differs, so no position of one run equals the other's
FIRST = ("Mary gave a drink to John, and then", "John gave a drink to John, and then")
# the first difference in the middle
MIDDLE = ("When Mary and John went to the store, John gave a drink to",
          "When Mary and John went to the store, Mary gave a drink to")  # fmt: skip


@pytest.fixture(scope="module")
def small_model():
    """2 blocks of 3 heads, sharpened: no two axes of a sweep of one length."""
    return sharpened(probe_model(dataclasses.replace(CFG, n_layers=2, n_heads=3)))


def _pair_and_metric(tokenizer, texts):
    clean, corrupted = (tokenizer.encode(text) for text in texts)
    assert len(clean) == len(corrupted)
    answer, distractor = tokenizer.encode(" Mary")[0], tokenizer.encode(" John")[0]
    return (clean, corrupted), Metric("logit_diff", answer, distractor, len(clean) - 1)


def _assert_matches(actual, expected, baseline):
    assert actual.shape == expected.shape
    assert np.nanmax(np.abs(expected - baseline)) > 1e-3  # the patches change the metric
    assert_close(actual - baseline, expected - baseline, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("direction", ["denoise", "noise"])
def test_every_sweep_equals_the_reference_when_the_first_token_differs(
    small_model, tokenizer, direction
):
    (clean, corrupted), metric = _pair_and_metric(tokenizer, FIRST)
    assert clean[0] != corrupted[0]
    result = patch(small_model, clean, corrupted, metric, tuple(SWEEPS), direction=direction)
    base, source = (corrupted, clean) if direction == "denoise" else (clean, corrupted)
    for name in SWEEPS:
        expected = reference_sweep(small_model, base, source, name, metric)
        _assert_matches(result.exact[name], expected, result.baseline)


@pytest.mark.parametrize("direction", ["denoise", "noise"])
def test_small_batches_give_the_same_sweeps(small_model, tokenizer, direction, monkeypatch):
    """One run per batch, then a few: packing and splitting runs changes nothing."""
    pair, metric = _pair_and_metric(tokenizer, MIDDLE)
    base, source = pair[::-1] if direction == "denoise" else pair
    names = ("resid", "attn", "mlp", "heads_by_pos")
    expected = {name: reference_sweep(small_model, base, source, name, metric) for name in names}
    for budget in (1, 2**21):
        monkeypatch.setattr("gpt_core.analysis.prefix_reuse.BATCH_BUDGET_BYTES", budget)
        result = patch(small_model, *pair, metric, names, direction=direction)
        for name in names:
            _assert_matches(result.exact[name], expected[name], result.baseline)


@pytest.mark.parametrize("direction", ["denoise", "noise"])
@pytest.mark.parametrize("receiver", ["logits", "1.2.q", "1.0.k", "1.1.v"])
def test_path_patching_equals_the_reference_when_the_first_token_differs(
    small_model, tokenizer, direction, receiver
):
    (clean, corrupted), metric = _pair_and_metric(tokenizer, FIRST)
    into = Receiver.parse(receiver)
    result = patch(small_model, clean, corrupted, metric, (), receiver=into, direction=direction)
    base, source = (corrupted, clean) if direction == "denoise" else (clean, corrupted)
    expected = reference_path(small_model, base, source, into, metric)
    known = ~np.isnan(expected)
    assert np.array_equal(known, ~np.isnan(result.path))
    assert_close(result.path[known], expected[known], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("receiver", ["logits", "1.2.q"])
def test_prompts_the_same_up_to_the_metric_patch_to_the_base_run(small_model, tokenizer,
                                                                  receiver):  # fmt: skip
    """No cell changes anything, so none is run: every exact cell and every path is the
    base run's metric, and every first-order estimate 0."""
    (clean, _), metric = _pair_and_metric(tokenizer, MIDDLE)
    later = [*clean[:-1], (clean[-1] + 1) % CFG.vocab_size]  # differs after the metric only
    metric = dataclasses.replace(metric, position=len(clean) - 2)
    result = patch(small_model, clean, later, metric, ("resid", "heads"), method="both",
                   receiver=Receiver.parse(receiver))  # fmt: skip
    for name in ("resid", "heads"):
        np.testing.assert_allclose(result.exact[name], result.clean_value, atol=1e-5)
        np.testing.assert_array_equal(result.attribution[name], 0)
    known = ~np.isnan(result.path)
    np.testing.assert_allclose(result.path[known], result.clean_value, atol=1e-5)
    np.testing.assert_array_equal(result.attribution["path"][known], 0)
