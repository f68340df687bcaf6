"""gpt_core.analysis against answers worked out by hand or recomputed in float64 numpy:
head statistics on made-up attention patterns, the logit lens from the captured residual
stream and the model's weights, and compare() / kl_divergence / log_softmax."""

import math

import numpy as np
import pytest
import torch

from gpt_core import (
    Interventions,
    capture,
    compare,
    head_metrics,
    head_summary,
    load_model,
    logit_lens,
    stage_key,
)
from gpt_core.analysis.compare import kl_divergence, log_softmax
from gpt_core.analysis.head_stats import HEAD_METRICS
from tests.probe_helpers import assert_close, to_np

# ---- head_metrics on patterns with known answers (T = 4) ----

UNIFORM = [[1, 0, 0, 0], [1 / 2, 1 / 2, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0], [1 / 4] * 4]
PREVIOUS = [[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]  # row 0 has no previous
FIRST = [[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]
SELF = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
MIXED = [[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.2, 0.5, 0.3, 0], [0.1, 0.2, 0.3, 0.4]]


def _plogp(*ps):
    return sum(p * math.log(p) for p in ps)


# One entry per head above. "previous" averages over the queries that have a previous
# token (rows 1..T-1); the other metrics over all T queries.
EXPECTED = {
    "entropy": [
        (math.log(1) + math.log(2) + math.log(3) + math.log(4)) / 4,
        0.0,
        0.0,
        0.0,
        -(0 + _plogp(0.5, 0.5) + _plogp(0.2, 0.5, 0.3) + _plogp(0.1, 0.2, 0.3, 0.4)) / 4,
    ],
    "previous": [
        (1 / 2 + 1 / 3 + 1 / 4) / 3,
        (1 + 1 + 1) / 3,
        (1 + 0 + 0) / 3,  # row 1's first token is also its previous one
        0.0,
        (0.5 + 0.5 + 0.3) / 3,
    ],
    "first": [
        (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4,
        (1 + 1 + 0 + 0) / 4,
        1.0,
        (1 + 0 + 0 + 0) / 4,
        (1 + 0.5 + 0.2 + 0.1) / 4,
    ],
    "self": [
        (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4,
        (1 + 0 + 0 + 0) / 4,
        (1 + 0 + 0 + 0) / 4,
        1.0,
        (1 + 0.5 + 0.3 + 0.4) / 4,
    ],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_head_metrics_of_known_patterns(dtype):
    weights = np.array([UNIFORM, PREVIOUS, FIRST, SELF, MIXED], dtype=dtype)  # [5, 4, 4]
    metrics = head_metrics(weights)
    assert set(metrics) == set(HEAD_METRICS) == set(EXPECTED)
    for name, expected in EXPECTED.items():
        assert metrics[name].shape == (5,), name
        assert_close(metrics[name], expected, rtol=1e-6, atol=1e-7)


def test_head_metrics_follow_their_head():
    """Each head's numbers come from that head alone, whatever the order of the heads."""
    weights = np.array([MIXED, SELF, PREVIOUS])
    metrics = head_metrics(weights)
    for name in EXPECTED:
        assert_close(metrics[name], [EXPECTED[name][i] for i in (4, 3, 1)], rtol=1e-12)


def test_head_metrics_of_a_single_token():
    metrics = head_metrics(np.ones((3, 1, 1), dtype=np.float32))
    assert_close(metrics["entropy"], np.zeros(3))
    assert_close(metrics["previous"], np.zeros(3))
    assert_close(metrics["first"], np.ones(3))
    assert_close(metrics["self"], np.ones(3))


def test_head_summary_of_a_real_trace(tiny_model, tiny_cfg, prompt_ids):
    trace = capture(tiny_model, prompt_ids)
    summary = head_summary(trace)
    L, H, T = tiny_cfg.n_layers, tiny_cfg.n_heads, len(prompt_ids)
    assert set(summary) == set(HEAD_METRICS)
    for name, values in summary.items():
        assert values.shape == (L, H), name
        for layer in range(L):
            per_layer = head_metrics(trace[stage_key("attn/weights", layer)])[name]
            assert np.array_equal(values[layer], per_layer), (name, layer)
    # and once more with loops over the rows, in float64
    for layer in range(L):
        w = trace[stage_key("attn/weights", layer)].astype(np.float64)
        for head in range(H):
            rows = [w[head, t, : t + 1] for t in range(T)]
            entropy = np.mean([-(r * np.log(r)).sum() for r in rows])
            previous = np.mean([w[head, t, t - 1] for t in range(1, T)])
            first = np.mean([w[head, t, 0] for t in range(T)])
            own = np.mean([w[head, t, t] for t in range(T)])
            got = [summary[n][layer, head] for n in ("entropy", "previous", "first", "self")]
            assert_close(got, [entropy, previous, first, own], rtol=1e-9, atol=1e-12)


# ---- the logit lens ----


@pytest.fixture(scope="module")
def sharp_model(tiny_cfg):
    """A tiny GPT with peaked predictions (a random one's are nearly flat, so its top-k
    would hang on rounding) and a final LayerNorm whose scale and shift matter."""
    model, _ = load_model(None, tiny_cfg, seed=5)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.out_head.weight.mul_(60.0)
        model.final_norm.scale.copy_(1.0 + 0.3 * torch.randn(tiny_cfg.emb_dim, generator=g))
        model.final_norm.shift.copy_(0.5 * torch.randn(tiny_cfg.emb_dim, generator=g))
    return model


def _lens_by_hand(model, resid, k):
    """resid [emb] float64 -> (top-k ids, their probabilities) through final_norm, out_head."""
    mean = resid.mean()
    var = ((resid - mean) ** 2).mean()  # biased
    y = (resid - mean) / np.sqrt(var + 1e-5) * to_np(model.final_norm.scale)
    y = y + to_np(model.final_norm.shift)
    logits = y @ to_np(model.out_head.weight).T  # [vocab]
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    order = np.argsort(-probs, kind="stable")
    assert probs[order[k - 1]] - probs[order[k]] > 1e-4 * probs[order[0]]  # no near-tie
    return order[:k], probs[order[:k]]


@pytest.mark.parametrize("k", [5, 3])
def test_logit_lens_recomputed_row_by_row(sharp_model, tiny_cfg, prompt_ids, k):
    trace = capture(sharp_model, prompt_ids)
    L = tiny_cfg.n_layers
    keys = ["embeddings/sum"] + [f"blocks/{i}/out" for i in range(L)]
    for position in (0, 4, len(prompt_ids) - 1):
        lens = logit_lens(sharp_model, trace, position, k=k)
        assert lens.position == position
        assert lens.labels == ("embeddings", "block 0", "block 1")
        assert lens.topk_ids.shape == lens.topk_probs.shape == (L + 1, k)
        for row, key in enumerate(keys):
            ids, probs = _lens_by_hand(sharp_model, trace[key][position].astype(np.float64), k)
            assert np.array_equal(lens.topk_ids[row], ids), (position, key)
            assert_close(lens.topk_probs[row], probs, rtol=1e-5, atol=1e-7)
        # the rows differ: each reads its own point of the residual stream
        assert len({tuple(r) for r in lens.topk_ids}) > 1
        # after the last block the lens is the model's own prediction
        assert np.array_equal(lens.topk_ids[-1], trace["logits/topk_ids"][position][:k])
        assert_close(lens.topk_probs[-1], trace["logits/topk_probs"][position][:k], rtol=1e-5)


# ---- compare(), kl_divergence, log_softmax ----


def test_log_softmax_by_hand():
    got = log_softmax(np.array([0.0, math.log(3.0)], dtype=np.float32))
    assert got.dtype == np.float64
    assert_close(got, [math.log(1 / 4), math.log(3 / 4)], rtol=1e-7)
    # the maximum is subtracted first: huge logits neither overflow nor lose the answer
    assert_close(log_softmax(np.array([1000.0, 1000.0])), [math.log(0.5)] * 2, rtol=1e-12)
    z = np.random.default_rng(0).normal(size=50) * 5
    expected = z - math.log(sum(math.exp(v) for v in z))
    assert_close(log_softmax(z), expected, rtol=1e-12, atol=1e-12)


def test_kl_divergence_by_hand():
    # p = (1/4, 3/4), q = (1/2, 1/2)
    p_logits, q_logits = np.array([0.0, math.log(3.0)]), np.array([5.0, 5.0])
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kl_divergence(p_logits, q_logits) == pytest.approx(expected, rel=1e-12)
    reverse = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)  # KL(q || p)
    assert kl_divergence(q_logits, p_logits) == pytest.approx(reverse, rel=1e-12)
    assert kl_divergence(p_logits, p_logits + 7.0) == pytest.approx(0.0, abs=1e-15)
    assert isinstance(kl_divergence(p_logits, q_logits), float)


def _logits_by_hand(model, ids, skip=()):
    """The model's [T, vocab] logits in float64, run block by block, leaving out `skip`."""
    with torch.no_grad():
        x = torch.tensor([ids])
        h = model.tok_emb(x) + model.pos_emb(torch.arange(len(ids)))
        for i, block in enumerate(model.trf_blocks):
            if i not in skip:
                h = block(h)
        return to_np(model.out_head(model.final_norm(h))[0])


def _softmax(logits):
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def test_compare_against_runs_done_by_hand(sharp_model, prompt_ids):
    T = len(prompt_ids)
    baseline = capture(sharp_model, prompt_ids)
    other = capture(sharp_model, prompt_ids, Interventions(skip_layers={1}), top_k=2)
    result = compare(baseline, other)
    p_before = _softmax(_logits_by_hand(sharp_model, prompt_ids))  # [T, vocab]
    p_after = _softmax(_logits_by_hand(sharp_model, prompt_ids, skip={1}))
    top1 = p_before.argmax(-1)
    assert np.array_equal(result.top1_ids_before, top1)
    assert np.array_equal(result.top1_ids_after, p_after.argmax(-1))
    assert_close(result.pred_prob_before, p_before.max(-1), rtol=1e-5)
    assert_close(result.delta_top1_prob, p_after.max(-1) - p_before.max(-1), rtol=1e-4, atol=1e-6)
    # without tracking: exact where the other run kept the token in its top 2, else NaN...
    rank = (p_after > p_after[np.arange(T), top1][:, None]).sum(-1)  # [T], 0: its own top-1
    kept = rank < other.top_k
    assert not kept[-1], "the case needs the last position's token outside the top 2"
    kept[-1] = True  # ...but always exact at the last position, which has every logit
    assert 0 < kept.sum() < T, "the case needs both kinds of position"
    assert np.array_equal(~np.isnan(result.pred_prob_after), kept)
    after = p_after[np.arange(T), top1]  # the other run's probability of the baseline's top-1
    assert_close(result.pred_prob_after[kept], after[kept], rtol=1e-5)
    assert_close(
        result.delta_pred_prob[kept], (after - p_before.max(-1))[kept], rtol=1e-4, atol=1e-7
    )
    targets = np.array(prompt_ids[1:])
    loss = -np.log(p_before[np.arange(T - 1), targets]).mean()
    loss_after = -np.log(p_after[np.arange(T - 1), targets]).mean()
    assert result.delta_loss == pytest.approx(loss_after - loss, rel=1e-4, abs=1e-6)
    p, q = p_before[-1], p_after[-1]
    assert result.kl_last == pytest.approx(float((p * np.log(p / q)).sum()), rel=1e-4)


def test_compare_of_one_token_runs_has_no_loss(sharp_model):
    result = compare(
        capture(sharp_model, [464]), capture(sharp_model, [464], Interventions({(0, 1)}))
    )
    assert result.delta_loss is None
    assert result.pred_prob_after.shape == (1,) and not np.isnan(result.pred_prob_after[0])
