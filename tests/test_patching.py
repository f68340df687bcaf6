"""Activation patching checked against a one-run-per-cell reference written in the tests
(tests/patching_reference.py), identities that must hold, attribution patching against
finite differences, and direct logit attribution against a numpy recomputation."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from gpt_core.analysis.patching import (
    SWEEPS,
    Metric,
    PatchError,
    Receiver,
    default_tokens,
    patch,
)
from gpt_core.errors import Cancelled
from tests.patching_reference import (
    activations,
    patched_metric,
    reference_path,
    reference_sweep,
    sharpened,
)
from tests.probe_helpers import CFG, assert_close, probe_model

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPTED = "When Mary and John went to the store, Mary gave a drink to"


@pytest.fixture(scope="module")
def model():
    """Every parameter random (biases and LayerNorms included), sharpened: 3 blocks of 4
    heads."""
    return sharpened(probe_model())


@pytest.fixture(scope="module")
def small_model():
    """The same, with 2 blocks of 3 heads, for the references that run the model once per
    cell of every sweep: every layout still, and no two axes of a sweep (blocks, heads, 14
    positions) of one length, so a transposed or misplaced axis cannot pass."""
    return sharpened(probe_model(dataclasses.replace(CFG, n_layers=2, n_heads=3)))


def assert_same_effects(actual, expected, baseline, smallest_effect=1e-3):
    """The change each patch makes, fast against reference, to 1e-5 absolute; and the
    changes are large enough for that to mean something."""
    known = ~np.isnan(expected)
    assert np.array_equal(np.isnan(actual), ~known)
    assert np.nanmax(np.abs(expected - baseline)) > smallest_effect
    assert_close(actual[known] - baseline, expected[known] - baseline, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def pair(tokenizer):
    clean, corrupted = tokenizer.encode(CLEAN), tokenizer.encode(CORRUPTED)
    assert len(clean) == len(corrupted)
    return clean, corrupted


@pytest.fixture(scope="module")
def metric(tokenizer, pair):
    answer, distractor = tokenizer.encode(" Mary")[0], tokenizer.encode(" John")[0]
    return Metric("logit_diff", answer, distractor, len(pair[0]) - 1)


@pytest.fixture(scope="module", params=["denoise", "noise"])
def result(request, small_model, pair, metric):
    """Every sweep of the small model, both methods."""
    return patch(small_model, *pair, metric, tuple(SWEEPS), method="both", direction=request.param)


@pytest.mark.parametrize("name", list(SWEEPS))
def test_every_sweep_equals_one_full_run_per_cell(small_model, pair, metric, result, name):
    clean, corrupted = pair
    base, source = (corrupted, clean) if result.direction == "denoise" else (clean, corrupted)
    expected = reference_sweep(small_model, base, source, name, metric)
    assert result.exact[name].shape == expected.shape
    assert_same_effects(result.exact[name], expected, result.baseline)


def test_patching_equal_activations_changes_nothing(result, pair):
    clean, corrupted = pair
    first_diff = next(i for i, (a, b) in enumerate(zip(clean, corrupted, strict=True)) if a != b)
    resid = result.exact["resid"]
    # where both runs' activations are equal, patching changes nothing
    assert np.allclose(resid[:, :first_diff], result.baseline, atol=1e-5)
    assert np.allclose(result.exact["heads_by_pos"][0, :, :first_diff], result.baseline, atol=1e-5)


def test_the_reference_itself_all_heads_equal_the_attention_output(model, pair, metric):
    """The oracle's own identity: every head of a block at every position patched together
    is the block's attention output patched at every position (same out_proj bias)."""
    clean, corrupted = pair
    heads = activations(model, clean, "heads")
    attn = activations(model, clean, "attn")
    everywhere = (0, slice(None))
    for layer in range(model.cfg.n_layers):
        by_heads = patched_metric(
            model, corrupted, "heads", layer, everywhere, heads[layer], metric
        )
        by_attn = patched_metric(model, corrupted, "attn", layer, everywhere, attn[layer], metric)
        assert by_heads == pytest.approx(by_attn, abs=1e-5)


def test_denoise_and_noise_agree_at_the_endpoints(model, pair, metric):
    """At block 0 the prompts differ at one position only, so patching it there is patching
    the whole run: denoising reaches the clean metric, noising the corrupted one."""
    clean, corrupted = pair
    diff = next(i for i, (a, b) in enumerate(zip(clean, corrupted, strict=True)) if a != b)
    denoise = patch(model, *pair, metric, ("resid",), direction="denoise")
    noise = patch(model, *pair, metric, ("resid",), direction="noise")
    assert (denoise.clean_value, denoise.corrupted_value) == (
        noise.clean_value,
        noise.corrupted_value,
    )
    assert denoise.exact["resid"][0, diff] == pytest.approx(denoise.clean_value, abs=1e-5)
    assert noise.exact["resid"][0, diff] == pytest.approx(noise.corrupted_value, abs=1e-5)
    assert denoise.normalised(denoise.exact["resid"])[0, diff] == pytest.approx(1, abs=1e-3)
    assert noise.normalised(noise.exact["resid"])[0, diff] == pytest.approx(0, abs=1e-3)


@pytest.mark.parametrize("receiver", ["logits", "2.1.q", "2.3.k", "1.0.v"])
def test_path_patching_equals_the_three_run_reference(model, pair, metric, receiver):
    clean, corrupted = pair
    result = patch(model, clean, corrupted, metric, (), receiver=Receiver.parse(receiver))
    expected = reference_path(model, corrupted, clean, Receiver.parse(receiver), metric)
    assert_same_effects(result.path, expected, result.baseline, smallest_effect=1e-4)


def test_attribution_is_the_first_order_change(model, pair, metric):
    """Moving the corrupted run a small step eps towards the clean one, the exact change of
    the metric divided by eps tends to the attribution. Central differences in float64 leave
    an error of order eps^2 (about 1e-6 here), far below the 1 % allowed."""
    clean, corrupted = pair
    result = patch(model, clean, corrupted, metric, ("resid",), method="attribution")
    estimate = result.attribution["resid"][0]  # [T]: block 0's input, i.e. the embeddings
    wide = copy.deepcopy(model).double()
    first_diff = next(i for i, (a, b) in enumerate(zip(clean, corrupted, strict=True)) if a != b)
    emb = wide.tok_emb.weight.detach()
    delta = emb[clean[first_diff]] - emb[corrupted[first_diff]]
    eps = 1e-3

    def metric_with(shift: float) -> float:
        def hook(module, args, out):
            out = out.clone()
            out[0, first_diff] += shift * delta
            return out

        handle = wide.tok_emb.register_forward_hook(hook)
        try:
            with torch.no_grad():
                logits = wide(torch.tensor([corrupted]))[0, metric.position]
        finally:
            handle.remove()
        return float(logits[metric.answer] - logits[metric.distractor])

    finite = (metric_with(eps) - metric_with(-eps)) / (2 * eps)
    assert abs(finite) > 1e-3  # a slope worth checking
    assert estimate[first_diff] == pytest.approx(finite, rel=1e-2)
    assert np.allclose(estimate[:first_diff], 0.0, atol=1e-7)  # equal activations, no change


def test_direct_logit_attribution_sums_to_the_metric_and_each_head_is_its_output(
    model, pair, metric
):
    result = patch(model, *pair, metric, ())
    parts = result.logit_attribution
    assert sum(parts.values()) == pytest.approx(result.clean_value, abs=1e-4)
    # each head recomputed in numpy float64 from its own context vector
    captured = {}
    handles = [
        block.att.context_point.register_forward_hook(
            lambda m, a, o, i=i: captured.__setitem__(i, o[0, metric.position].double().numpy())
        )
        for i, block in enumerate(model.trf_blocks)
    ]
    final = {}
    handles.append(
        model.final_norm.register_forward_pre_hook(
            lambda m, a: final.__setitem__("x", a[0][0, metric.position].double().numpy())
        )
    )
    with torch.no_grad():
        model(torch.tensor([pair[0]]))
    for handle in handles:
        handle.remove()
    x = final["x"]
    sigma = np.sqrt(((x - x.mean()) ** 2).mean() + 1e-5)
    scale = model.final_norm.scale.detach().double().numpy()
    w_u = model.out_head.weight.detach().double().numpy()
    direction = (w_u[metric.answer] - w_u[metric.distractor]) * scale / sigma
    d_head = model.trf_blocks[0].att.head_dim
    for layer, block in enumerate(model.trf_blocks):
        w_o = block.att.out_proj.weight.detach().double().numpy()  # [E, E]
        for head in range(model.cfg.n_heads):
            z = captured[layer][head]  # [d_head]
            out = w_o[:, head * d_head : (head + 1) * d_head] @ z  # [E]
            expected = (out - out.mean()) @ direction
            assert parts[f"L{layer}H{head}"] == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_other_metrics_match_the_reference(model, pair):
    position = len(pair[0]) - 3  # not the last position
    answer, _ = default_tokens(model, *pair, position)  # a likely token: p is not tiny
    for kind, smallest in (("logprob", 1e-3), ("prob", 1e-4)):
        metric = Metric(kind, answer, None, position)
        result = patch(model, *pair, metric, ("heads",))
        expected = reference_sweep(model, pair[1], pair[0], "heads", metric)
        assert_same_effects(result.exact["heads"], expected, result.baseline, smallest)


def test_bad_inputs_are_clear_errors(model, pair, metric, tokenizer):
    clean, corrupted = pair
    with pytest.raises(PatchError, match="clean has 14 tokens, corrupted 15"):
        patch(model, clean, [*corrupted, 13], metric)
    with pytest.raises(PatchError, match="outside the prompt"):
        patch(model, clean, corrupted, Metric("prob", 5, None, 99))
    with pytest.raises(PatchError, match="unknown sweep"):
        patch(model, clean, corrupted, metric, ("everything",))
    with pytest.raises(PatchError, match="does not exist"):
        patch(model, clean, corrupted, metric, (), receiver=Receiver(7, 0, "q"))
    with pytest.raises(ValueError, match="distractor"):
        Metric("logit_diff", 1, None, 0)
    with pytest.raises(ValueError, match="receiver"):
        Receiver.parse("2.1")


def test_progress_partial_results_and_cancel(model, pair, metric):
    seen, partial = [], []
    patch(
        model,
        *pair,
        metric,
        ("resid", "heads"),
        progress=lambda done, total: seen.append((done, total)),
        on_partial=lambda name, values: partial.append((name, np.isnan(values).sum())),
    )
    total = seen[-1][1]
    assert seen[-1][0] == total == model.cfg.n_layers * (len(pair[0]) + model.cfg.n_heads)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert partial[0][1] > 0 and partial[-1][1] == 0  # filled block by block
    with pytest.raises(Cancelled):
        patch(model, *pair, metric, ("resid",), should_stop=lambda: True)
    assert not model.training


@pytest.mark.cuda
def test_patching_on_cuda_matches_the_cpu(model, pair, metric):
    on_cpu = patch(model, *pair, metric, tuple(SWEEPS), method="both", device="cpu")
    on_cuda = patch(
        copy.deepcopy(model), *pair, metric, tuple(SWEEPS), method="both", device="cuda"
    )
    for name in SWEEPS:
        assert_close(on_cuda.exact[name], on_cpu.exact[name], rtol=1e-4, atol=1e-4)
        assert_close(on_cuda.attribution[name], on_cpu.attribution[name], rtol=1e-3, atol=1e-4)


def test_attribution_with_frozen_parameters(model, pair, metric):
    frozen = copy.deepcopy(model).requires_grad_(False)
    result = patch(frozen, *pair, metric, ("resid", "heads"), method="attribution")
    expected = patch(model, *pair, metric, ("resid", "heads"), method="attribution")
    for name in ("resid", "heads"):
        assert np.allclose(result.attribution[name], expected.attribution[name], atol=1e-6)


def test_receivers_are_checked():
    with pytest.raises(ValueError, match="a receiver is the logits"):
        Receiver(3)
    with pytest.raises(ValueError, match="q, k or v"):
        Receiver(3, 1, "x")
    assert Receiver.parse("logits") == Receiver(None)


@pytest.mark.parametrize("receiver", ["logits", "2.1.q"])
def test_path_attribution_is_the_slope_of_path_patching(model, pair, metric, receiver):
    """Central differences of the three-run reference, moving the sender a small step
    along its change, in float64."""
    clean, corrupted = pair
    result = patch(
        model, clean, corrupted, metric, (), method="attribution", receiver=Receiver.parse(receiver)
    )
    wide, eps = copy.deepcopy(model).double(), 1e-3
    up = reference_path(wide, corrupted, clean, Receiver.parse(receiver), metric, eps)
    down = reference_path(wide, corrupted, clean, Receiver.parse(receiver), metric, -eps)
    slope = (up - down) / (2 * eps)
    known = ~np.isnan(slope)
    assert np.array_equal(np.isnan(result.attribution["path"]), ~known)
    assert np.nanmax(np.abs(slope)) > 1e-4
    assert_close(result.attribution["path"][known], slope[known], rtol=2e-2, atol=2e-5)
