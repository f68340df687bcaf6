"""gpt_core's analysis, for the one-line bugs the older tests let through: a repeated sequence
longer than the context, a lens read at a negative position, the default answer and
distractor, the layout of the per-position head estimates. The oracles are plain loops
over the model's own forward and identities between sweeps."""

import numpy as np
import pytest
import torch

from gpt_core import capture
from gpt_core.analysis import head_type_scores, sublayer_lens
from gpt_core.analysis.patching import Metric, default_tokens, patch

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPTED = "When Mary and John went to the store, Mary gave a drink to"


@pytest.fixture(scope="module")
def pair(tokenizer):
    clean, corrupted = tokenizer.encode(CLEAN), tokenizer.encode(CORRUPTED)
    assert len(clean) == len(corrupted)
    return clean, corrupted


def test_the_repeated_probe_is_as_long_as_the_context_allows(tiny_model, tiny_cfg):
    """Two copies after one start token: 2n + 1 tokens, at most the context (64 → n = 31)."""
    assert tiny_cfg.context_length == 64
    scores = head_type_scores(tiny_model)  # asks for 50 per copy, more than fits
    assert len(scores["ids"]) == 63
    assert scores["ids"][1:32].tolist() == scores["ids"][32:].tolist()


def test_a_lens_at_a_negative_position_is_refused(tiny_model, prompt_ids):
    trace = capture(tiny_model, prompt_ids)
    for positions in ([-1], [0, -1], [trace.n_tokens]):
        with pytest.raises(ValueError, match="positions"):
            sublayer_lens(tiny_model, trace, positions=positions)


def test_the_default_answer_is_the_clean_top1_and_the_distractor_the_corrupted_one(
    tiny_model, pair
):
    """At every position, against a plain loop over the model's logits; where the two runs
    agree on the top token (the shared prefix) the distractor is the corrupted run's second."""
    clean, corrupted = pair
    with torch.no_grad():
        ranked = [
            np.argsort(-tiny_model(torch.tensor([ids]))[0].double().numpy(), axis=-1)[:, :2]
            for ids in (clean, corrupted)
        ]  # [T, 2] each: the two most likely next tokens
    agreed = 0
    for position in range(len(clean)):
        answer = ranked[0][position, 0]
        top, second = ranked[1][position]
        expected = (answer, second if top == answer else top)
        assert default_tokens(tiny_model, clean, corrupted, position) == expected, position
        agreed += top == answer
    assert 0 < agreed < len(clean)  # both cases were seen


def test_per_position_head_estimates_have_the_exact_layout_and_sum_to_the_heads(
    tiny_model, tiny_cfg, pair
):
    clean, corrupted = pair
    metric = Metric("logprob", 262, None, len(clean) - 1)
    result = patch(tiny_model, clean, corrupted, metric, ("heads", "heads_by_pos"), method="both")
    by_position, heads = result.attribution["heads_by_pos"], result.attribution["heads"]
    layout = (tiny_cfg.n_layers, tiny_cfg.n_heads, len(clean))
    assert result.exact["heads_by_pos"].shape == by_position.shape == layout
    # a head's change at every position is the sum of its changes position by position
    assert np.allclose(by_position.sum(-1), heads, rtol=1e-5, atol=1e-7)
    assert np.abs(heads).max() > 1e-4  # the estimates are not all zero


def test_a_receiver_in_block_0_is_refused(tiny_model, pair):
    from gpt_core.analysis.patching import PatchError, Receiver

    clean, corrupted = pair
    metric = Metric("logprob", 262, None, len(clean) - 1)
    with pytest.raises(PatchError, match="block 0 has no earlier heads"):
        patch(tiny_model, clean, corrupted, metric, (), receiver=Receiver(0, 1, "q"))


@pytest.mark.parametrize(("clean", "corrupted"), [(0.0, 2e-7), (0.5, 0.5 + 8e-7), (-3.0, -3.0)])
def test_metrics_apart_by_float_noise_are_the_same_and_do_not_normalise(clean, corrupted):
    from gpt_core.analysis.patching import PatchResult

    ids = np.zeros(2, np.int64)
    result = PatchResult(ids, ids, Metric("prob", 1, None, 1), "denoise", clean, corrupted)
    assert result.same_metric
    assert np.isnan(result.normalised(np.array([clean, corrupted]))).all()


@pytest.mark.parametrize(("clean", "corrupted"), [(0.0, 1e-3), (2.0, 1.0)])
def test_metrics_apart_normalise_to_1_for_clean_and_0_for_corrupted(clean, corrupted):
    from gpt_core.analysis.patching import PatchResult

    ids = np.zeros(2, np.int64)
    result = PatchResult(ids, ids, Metric("prob", 1, None, 1), "denoise", clean, corrupted)
    assert not result.same_metric
    middle = (clean + corrupted) / 2
    normalised = result.normalised(np.array([clean, corrupted, middle]))
    assert np.allclose(normalised, [1.0, 0.0, 0.5], rtol=1e-9, atol=1e-9)
