"""next_token_distribution against transformers' own warpers (TemperatureLogitsWarper →
TopKLogitsWarper → TopPLogitsWarper → softmax, as `generate` chains them), with ties at the
cut-offs, greedy at temperature 0, and seeded draws."""

import itertools

import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from gpt_core import generate, next_token_distribution, pick_next_token

TEMPERATURES = (0.25, 0.7, 1.0, 1.6, 4.0)
TOP_KS = (None, 1, 3, 17, 200, 5000)
TOP_PS = (None, 0.05, 0.3, 0.5, 0.9, 0.999, 1.0)


def _logits(kind: str) -> torch.Tensor:
    rng = np.random.default_rng(0)
    if kind == "normal":
        values = rng.normal(scale=3.0, size=1000)
    elif kind == "ties":  # five values only: every cut-off falls inside a tie
        values = rng.integers(0, 5, size=1000).astype(float)
    else:  # "peaked": one token far ahead, a tie behind it
        values = np.concatenate([[12.0], np.full(9, 4.0), rng.normal(size=990)])
    return torch.tensor(values, dtype=torch.float32)


def _transformers(logits, temperature, top_k, top_p) -> np.ndarray:
    """What transformers' generate samples from: its warpers, in its order, then softmax."""
    warpers = LogitsProcessorList([TemperatureLogitsWarper(float(temperature))])
    if top_k is not None:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p is not None:
        warpers.append(TopPLogitsWarper(top_p))
    scores = warpers(torch.zeros(1, 1, dtype=torch.long), logits[None].clone())
    return torch.softmax(scores, dim=-1)[0].numpy()


@pytest.mark.parametrize("kind", ["normal", "ties", "peaked"])
def test_probabilities_equal_transformers_warpers_over_a_grid(kind):
    logits = _logits(kind)
    for temperature, top_k, top_p in itertools.product(TEMPERATURES, TOP_KS, TOP_PS):
        expected = _transformers(logits, temperature, top_k, top_p)
        got = next_token_distribution(logits, temperature, top_k, top_p)
        where = (kind, temperature, top_k, top_p)
        assert np.array_equal(got.probs > 0, expected > 0), where  # the same tokens cut
        assert np.abs(got.probs - expected).max() < 1e-6, where
        assert got.possible == np.count_nonzero(expected), where


def test_at_gpt2s_vocabulary_too():
    logits = torch.randn(50257, generator=torch.Generator().manual_seed(1)) * 4
    for settings in [(0.8, 40, 0.9), (1.3, None, 0.95), (0.5, 50, None), (1.0, None, 1.0)]:
        expected = _transformers(logits, *settings)
        assert np.abs(next_token_distribution(logits, *settings).probs - expected).max() < 1e-6


def test_top_k_keeps_every_token_tied_with_the_kth_logit():
    d = next_token_distribution(torch.tensor([3.0, 2.0, 2.0, 2.0, 1.0]), 1.0, top_k=2)
    assert d.top_k_kept == 4 and d.kth_logit == 2.0
    assert np.count_nonzero(d.probs) == 4 and d.probs[4] == 0


def test_top_p_keeps_the_smallest_set_that_reaches_p():
    # probabilities 0.5, 0.3, 0.15, 0.05
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    for top_p, size in [(0.4, 1), (0.5, 1), (0.6, 2), (0.8, 2), (0.81, 3), (0.95, 3), (1.0, 4)]:
        d = next_token_distribution(logits, 1.0, None, top_p)
        assert d.nucleus_size == d.possible == size, (top_p, d.probs)
    tiny = next_token_distribution(logits, 1.0, None, 1e-9)  # never less than one token
    assert tiny.possible == 1 and tiny.probs[0] == 1


def test_the_cuts_follow_the_temperature():
    """Top-p reads the probabilities after ÷ temperature: at a low temperature the first
    token alone reaches p, at a high one it does not."""
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert next_token_distribution(logits, 0.3, None, 0.8).nucleus_size == 1
    assert next_token_distribution(logits, 3.0, None, 0.8).nucleus_size == 3


def test_entropies_and_the_distribution_before():
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0])
    d = next_token_distribution(logits, 2.0, 2, None)
    before = np.exp(logits.double().numpy()) / np.exp(logits.double().numpy()).sum()
    after = np.array([np.exp(0.5), 0, 0, np.exp(1.0)]) / (np.exp(0.5) + np.exp(1.0))
    assert np.allclose(d.before, before, atol=1e-7) and np.allclose(d.probs, after, atol=1e-7)
    assert d.entropy_before == pytest.approx(-(before * np.log(before)).sum(), abs=1e-6)
    nonzero = after[after > 0]
    assert d.entropy_after == pytest.approx(-(nonzero * np.log(nonzero)).sum(), abs=1e-6)


def test_temperature_zero_is_greedy():
    logits = _logits("normal")
    d = next_token_distribution(logits, 0.0, 5, 0.5)
    assert d.greedy and d.possible == 1 and d.probs[int(logits.argmax())] == 1
    assert d.entropy_after == 0 and d.kth_logit is None and d.nucleus_size is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [((-0.1, None, None), "temperature"), ((float("nan"), None, None), "temperature"),
     ((1.0, 0, None), "top_k"), ((1.0, None, 0.0), "top_p"), ((1.0, None, 1.01), "top_p")],
)  # fmt: skip
def test_settings_out_of_range_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        next_token_distribution(torch.zeros(5), *settings)


def test_a_seeded_draw_is_reproducible(tiny_model, prompt_ids):
    logits = _logits("normal")
    draws = [
        [pick_next_token(logits, 1.2, 100, 0.9, torch.Generator().manual_seed(s)) for s in seeds]
        for seeds in (range(30), range(30), range(1, 31))
    ]
    assert draws[0] == draws[1] != draws[2]
    kept = np.flatnonzero(next_token_distribution(logits, 1.2, 100, 0.9).probs)
    assert set(draws[0]) <= set(kept.tolist()) and len(set(draws[0])) > 1
    a = generate(tiny_model, prompt_ids, 6, temperature=1.5, top_k=50, seed=3, top_p=0.9)
    assert a == generate(tiny_model, prompt_ids, 6, temperature=1.5, top_k=50, seed=3, top_p=0.9)
    assert a != generate(tiny_model, prompt_ids, 6, temperature=1.5, top_k=50, seed=4, top_p=0.9)


def test_a_draw_follows_the_distribution():
    """2,000 seeded draws: each kept token's share is within 4 standard errors of its p."""
    logits = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.06, 0.04]))
    p = next_token_distribution(logits, 1.0, None, 0.85).probs
    g = torch.Generator().manual_seed(0)
    counts = np.bincount(
        [pick_next_token(logits, 1.0, None, 0.85, g) for _ in range(2000)], minlength=5
    )
    share = counts / 2000
    assert counts[3:].sum() == 0
    assert np.all(np.abs(share - p) <= 4 * np.sqrt(p * (1 - p) / 2000) + 1e-9)
