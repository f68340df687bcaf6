"""The probe, checked against recomputation from the captured inputs (numpy, float64),
against transformers' GPT-2 with the same weights, and against torch.autograd.grad."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt_core import (
    Cancelled,
    DeviceError,
    GPTConfig,
    Interventions,
    PromptError,
    Trace,
    TraceError,
    backward_step,
    capture,
    compare,
    load_model,
)
from tests.hf_reference import build_hf_gpt2, save_hf_folder

CFG = GPTConfig(
    vocab_size=50257, context_length=48, emb_dim=48, n_heads=4, n_layers=3, qkv_bias=True
)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    """Symmetric: |a - b| <= atol + rtol * max(|a|, |b|) everywhere."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    bound = atol + rtol * np.maximum(np.abs(a), np.abs(b))
    worst = np.max(np.abs(a - b) - bound) if a.size else -1
    assert worst <= 0, (
        f"max excess over tolerance {worst:.3g}, max abs diff {np.max(np.abs(a - b)):.3g}"
    )


def _randomise(model, seed=0):
    """Every parameter random (LayerNorm scale near 1, nonzero biases and shifts)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith("scale"):
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith(("bias", "shift")):
                p.copy_(0.05 * noise)
    return model


@pytest.fixture(scope="module")
def model():
    return _randomise(load_model(None, CFG, seed=3)[0])


@pytest.fixture(scope="module")
def ids(tokenizer):
    text = "The cat sat on the mat. Then it looked at the 🐟 and <|endoftext|> left"
    return tokenizer.encode(text)


@pytest.fixture(scope="module")
def trace(model, ids):
    return capture(model, ids)


def _np(t):
    return t.detach().double().numpy()


def _w(linear):
    return _np(linear.weight), (None if linear.bias is None else _np(linear.bias))


def _linear(x, linear):
    w, b = _w(linear)
    y = x @ w.T
    return y if b is None else y + b


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _layer_norm(x, norm):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (
        (x - mean) / np.sqrt(var + 1e-5) * _np(norm.scale) + _np(norm.shift),
        mean[:, 0],
        var[:, 0],
    )


def _block_input(trace, i):
    return trace["embeddings/sum"] if i == 0 else trace[f"blocks/{i - 1}/out"]


# ---- stages and recomputation ----


def test_stages_are_in_data_flow_order_with_documented_keys(trace, ids):
    keys = [s.key for s in trace.stages]
    assert keys[:6] == [
        "embeddings/token",
        "embeddings/position",
        "embeddings/sum",
        "blocks/0/ln1/mean",
        "blocks/0/ln1/var",
        "blocks/0/ln1/out",
    ]
    block = [
        "ln1/mean",
        "ln1/var",
        "ln1/out",
        "attn/weights",
        "attn/context",
        "attn/out",
        "resid_mid",
        "ln2/mean",
        "ln2/var",
        "ln2/out",
        "ff/pre_gelu",
        "ff/gelu",
        "ff/out",
        "out",
    ]
    for i in range(CFG.n_layers):
        assert keys[3 + 14 * i : 3 + 14 * (i + 1)] == [f"blocks/{i}/{k}" for k in block]
    documented = [
        "tokens/ids",
        "logits/last",
        "logits/topk_ids",
        "logits/topk_probs",
        "final_norm/out",
    ]
    for key in keys + documented:
        assert key in trace
    T = len(ids)
    assert trace["blocks/1/attn/weights"].shape == (4, T, T)
    assert trace["blocks/1/attn/context"].shape == (T, 4, 12)
    assert trace["blocks/1/ff/pre_gelu"].shape == (T, 4 * 48)
    assert trace["blocks/1/ln1/var"].shape == (T,)
    assert trace["logits/topk_ids"].shape == (T, 20)
    for stage in trace.stages:
        assert trace[stage.key].shape == stage.shape
        assert stage.explanation and stage.formula and stage.title
        if stage.kind != "logits":
            assert trace[stage.key].dtype == np.float32
    assert trace.stage("blocks/2/ln2/out").layer == 2
    assert trace.stage("embeddings/sum").layer is None
    assert trace.device == "cpu" and trace.config == CFG
    assert list(trace.token_ids) == ids and len(trace.token_strings) == len(ids)


def test_arrays_are_read_only(trace):
    with pytest.raises(ValueError):
        trace["blocks/0/out"][0, 0] = 1.0


def test_embeddings(model, trace, ids):
    assert_close(trace["embeddings/token"], _np(model.tok_emb.weight)[ids])
    assert_close(trace["embeddings/position"], _np(model.pos_emb.weight)[: len(ids)])
    assert_close(
        trace["embeddings/sum"],
        trace["embeddings/token"].astype(np.float64) + trace["embeddings/position"],
    )


@pytest.mark.parametrize("layer", range(CFG.n_layers))
def test_attention_recomputed_from_the_captured_norm1_output(model, trace, layer):
    att = model.trf_blocks[layer].att
    x = trace[f"blocks/{layer}/ln1/out"].astype(np.float64)  # [T, emb]
    T, H, d = x.shape[0], CFG.n_heads, CFG.emb_dim // CFG.n_heads
    q = _linear(x, att.W_query).reshape(T, H, d).transpose(1, 0, 2)
    k = _linear(x, att.W_key).reshape(T, H, d).transpose(1, 0, 2)
    v = _linear(x, att.W_value).reshape(T, H, d).transpose(1, 0, 2)
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d) + np.triu(np.full((T, T), -np.inf), 1)
    expected = np.exp(scores - scores.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    weights = trace[f"blocks/{layer}/attn/weights"]
    assert_close(weights, expected)
    assert_close(weights.sum(-1), np.ones((H, T)))
    assert np.all(np.triu(weights, 1) == 0.0)
    for head in range(H):
        assert np.array_equal(trace.head_weights(layer, head), weights[head])
    context = (weights.astype(np.float64) @ v).transpose(1, 0, 2)  # [T, H, d]
    assert_close(trace[f"blocks/{layer}/attn/context"], context)
    assert_close(
        trace[f"blocks/{layer}/attn/out"],
        _linear(
            trace[f"blocks/{layer}/attn/context"].reshape(T, -1).astype(np.float64), att.out_proj
        ),
    )


@pytest.mark.parametrize("layer", range(CFG.n_layers))
def test_layer_norms_feed_forward_and_residuals(model, trace, layer):
    block = model.trf_blocks[layer]
    p = f"blocks/{layer}/"
    x_in = _block_input(trace, layer).astype(np.float64)
    out, mean, var = _layer_norm(x_in, block.norm1)
    assert_close(trace[p + "ln1/mean"], mean, atol=1e-6)
    assert_close(trace[p + "ln1/var"], var)
    assert_close(trace[p + "ln1/out"], out)
    assert_close(trace[p + "resid_mid"], x_in + trace[p + "attn/out"])
    out, mean, var = _layer_norm(trace[p + "resid_mid"].astype(np.float64), block.norm2)
    assert_close(trace[p + "ln2/mean"], mean, atol=1e-6)
    assert_close(trace[p + "ln2/var"], var)
    assert_close(trace[p + "ln2/out"], out)
    assert_close(
        trace[p + "ff/pre_gelu"],
        _linear(trace[p + "ln2/out"].astype(np.float64), block.ff.layers[0]),
    )
    assert_close(trace[p + "ff/gelu"], _gelu(trace[p + "ff/pre_gelu"].astype(np.float64)))
    assert_close(
        trace[p + "ff/out"], _linear(trace[p + "ff/gelu"].astype(np.float64), block.ff.layers[2])
    )
    assert_close(trace[p + "out"], trace[p + "resid_mid"].astype(np.float64) + trace[p + "ff/out"])


def test_final_norm_logits_top_k_and_loss(model, trace, ids):
    x = trace[f"blocks/{CFG.n_layers - 1}/out"].astype(np.float64)
    out, mean, var = _layer_norm(x, model.final_norm)
    assert_close(trace["final_norm/out"], out)
    assert_close(trace["final_norm/var"], var)
    logits = trace["final_norm/out"].astype(np.float64) @ _np(model.out_head.weight).T  # [T, V]
    assert_close(trace["logits/last"], logits[-1], atol=1e-5)
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    expected_ids = np.argsort(-logits, axis=-1, kind="stable")[:, :20]
    assert np.array_equal(trace["logits/topk_ids"], expected_ids)
    assert_close(
        trace["logits/topk_probs"], np.exp(np.take_along_axis(log_probs, expected_ids, -1))
    )
    per_token = -log_probs[np.arange(len(ids) - 1), ids[1:]]
    assert_close(trace["loss/per_token"], per_token)
    assert trace.loss == pytest.approx(per_token.mean(), rel=1e-5)


def test_top_k_agrees_with_torch_topk_on_many_rows():
    from gpt_core.predictions import topk_rows

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 50257, generator=g) * torch.rand(300, 1, generator=g) * 10
    logits[5, 50250:] = 100.0  # the winners in the tail that is no whole block
    logits[6, :] = 0.0  # all tied
    values, indices = topk_rows(logits, 25)
    expected = torch.topk(logits, 25, dim=-1)
    assert torch.equal(values, expected.values)
    assert torch.equal(logits.gather(1, indices), expected.values)
    untied = [r for r in range(300) if r not in (5, 6)]  # ties may come in any order
    assert torch.equal(indices[untied], expected.indices[untied])


def test_one_token_prompt_has_no_loss(model):
    trace = capture(model, [464])
    assert trace.loss is None and trace["loss/per_token"].shape == (0,)
    assert trace["logits/topk_ids"].shape == (1, 20)


# ---- an independent implementation: transformers' GPT-2 ----


@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
    hf_model = build_hf_gpt2(n_embd=48, n_layer=3, n_head=4, n_positions=48, seed=11)
    ours, _ = load_model(save_hf_folder(hf_model, tmp_path_factory.mktemp("hf_probe")))
    return hf_model, ours


def test_attentions_and_hidden_states_match_transformers(hf_pair, ids):
    hf_model, ours = hf_pair
    trace = capture(ours, ids)
    with torch.no_grad():
        out = hf_model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    n = ours.cfg.n_layers
    for i in range(n):
        assert_close(trace[f"blocks/{i}/attn/weights"], _np(out.attentions[i][0]))
    assert_close(trace["embeddings/sum"], _np(out.hidden_states[0][0]))
    for i in range(n - 1):
        assert_close(trace[f"blocks/{i}/out"], _np(out.hidden_states[i + 1][0]), atol=1e-5)
    # transformers' last hidden state is taken after its final LayerNorm.
    assert_close(trace["final_norm/out"], _np(out.hidden_states[n][0]), atol=1e-5)
    assert_close(trace["logits/last"], _np(out.logits[0, -1]), atol=1e-5)


def test_gradients_match_autograd_on_transformers(hf_pair, ids):
    hf_model, ours = hf_pair
    trace = backward_step(ours, ids)
    x = torch.tensor([ids])
    out = hf_model(x, output_attentions=True, output_hidden_states=True)
    loss = F.cross_entropy(out.logits[0, :-1], x[0, 1:])
    n = ours.cfg.n_layers
    wrt = [out.hidden_states[0], *out.hidden_states[1:n], *out.attentions]
    grads = torch.autograd.grad(loss, wrt)
    assert trace.backward.loss == pytest.approx(loss.item(), rel=1e-6)
    assert_close(trace.grad("embeddings/sum"), _np(grads[0][0]), atol=1e-7)
    for i in range(n - 1):
        assert_close(trace.grad(f"blocks/{i}/out"), _np(grads[1 + i][0]), atol=1e-7)
    for i in range(n):
        assert_close(trace.grad(f"blocks/{i}/attn/weights"), _np(grads[n + i][0]), atol=1e-7)


# ---- gradients against torch.autograd.grad on our own model ----


def _autograd_reference(model, ids, target=None):
    """Activations kept by the test's own forward hooks, gradients by torch.autograd.grad."""
    kept, handles = {}, []
    watch = {
        "embeddings/token": model.tok_emb,
        "embeddings/sum": model.drop_emb,
        "final_norm/out": model.final_norm,
    }
    for i, block in enumerate(model.trf_blocks):
        watch |= {
            f"blocks/{i}/ln1/out": block.norm1,
            f"blocks/{i}/attn/weights": block.att.weights_point,
            f"blocks/{i}/attn/context": block.att.context_point,
            f"blocks/{i}/attn/out": block.att,
            f"blocks/{i}/ln2/var": block.norm2.var_point,
            f"blocks/{i}/ff/pre_gelu": block.ff.layers[0],
            f"blocks/{i}/ff/gelu": block.ff.layers[1],
            f"blocks/{i}/out": block,
        }
    for key, module in watch.items():
        handles.append(
            module.register_forward_hook(lambda m, a, o, key=key: kept.__setitem__(key, o))
        )
    try:
        x = torch.tensor([ids])
        logits = model(x)[0]
        if target is None:
            loss = F.cross_entropy(logits[:-1], x[0, 1:])
        else:
            loss = -torch.log_softmax(logits[target[0]], -1)[target[1]]
        keys = list(kept)
        params = [p for _, p in model.named_parameters()]
        grads = torch.autograd.grad(loss, [kept[k] for k in keys] + params)
    finally:
        for h in handles:
            h.remove()
    acts = {k: g for k, g in zip(keys, grads[: len(keys)], strict=True)}
    return loss.item(), acts, grads[len(keys) :]


@pytest.mark.parametrize("target", [None, (5, 1234)])
def test_backward_step_gradients_equal_autograd(model, ids, target):
    trace = backward_step(model, ids, target=target)
    loss, acts, param_grads = _autograd_reference(model, ids, target)
    assert trace.backward.loss == pytest.approx(loss, rel=1e-6)
    assert trace.backward.target == target
    for key, grad in acts.items():
        g = grad[0, :, 0] if key.endswith("/var") else grad[0]
        assert_close(trace.grad(key), _np(g), atol=1e-8)
    names = [n for n, _ in model.named_parameters()]
    assert [p.name for p in trace.backward.params] == names
    for info, grad, (_, p) in zip(
        trace.backward.params, param_grads, model.named_parameters(), strict=True
    ):
        assert info.grad_norm == pytest.approx(grad.norm().item(), rel=1e-5, abs=1e-9)
        assert info.weight_norm == pytest.approx(p.norm().item(), rel=1e-5)
        assert info.ratio == pytest.approx(info.grad_norm / info.weight_norm)


def test_target_loss_only_reaches_positions_up_to_the_target(model, ids):
    trace = backward_step(model, ids, target=(4, 42))
    grad = trace.grad("embeddings/token")
    assert np.all(grad[5:] == 0) and np.any(grad[:5] != 0)


def test_backward_order_runs_from_the_loss_to_the_embeddings(model, ids):
    trace = backward_step(model, ids)
    order = [key for key, _ in trace.backward.order]
    assert order[0] == "logits"
    assert order.index("final_norm/out") < order.index("blocks/2/out")
    assert order.index("blocks/2/ln1/out") < order.index("blocks/1/out")
    assert order.index("blocks/0/attn/weights") < order.index("embeddings/sum")
    assert set(order[-2:]) == {"embeddings/token", "embeddings/position"}
    stage_keys = {s.key for s in trace.stages if s.kind != "logits"}
    assert set(order) == stage_keys | {"logits"}
    assert len(order) == len(set(order))
    for key, norm in trace.backward.order:
        if key != "logits":
            assert norm == pytest.approx(
                np.linalg.norm(trace.grad(key).astype(np.float64)), rel=1e-4
            )


def test_sgd_step_reports_losses_and_restores_the_weights_bit_for_bit(model, ids):
    before = copy.deepcopy(model.state_dict())
    lr = 0.5
    trace = backward_step(model, ids, sgd_lr=lr)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    stepped = copy.deepcopy(model)
    _, _, grads = _autograd_reference(model, ids)
    with torch.no_grad():
        for p, g in zip(stepped.parameters(), grads, strict=True):
            p -= lr * g
        x = torch.tensor([ids])
        expected_after = F.cross_entropy(stepped(x)[0, :-1], x[0, 1:]).item()
    assert trace.backward.sgd_lr == lr
    assert trace.backward.loss_after_sgd == pytest.approx(expected_after, rel=1e-5)
    assert trace.backward.loss_after_sgd < trace.backward.loss


def test_one_token_prompt_needs_a_target(model):
    with pytest.raises(PromptError, match="one-token prompt"):
        backward_step(model, [464])
    trace = backward_step(model, [464], target=(0, 11))
    assert trace.backward.loss > 0


def test_bad_targets(model, ids):
    with pytest.raises(PromptError, match="outside the prompt"):
        backward_step(model, ids, target=(len(ids), 1))
    with pytest.raises(PromptError, match="outside the vocabulary"):
        backward_step(model, ids, target=(0, 50257))


# ---- interventions ----


def test_empty_interventions_reproduce_the_baseline_bit_for_bit(model, ids, trace):
    again = capture(model, ids, Interventions())
    assert set(again.keys()) == set(trace.keys())
    for key in trace:
        assert np.array_equal(again[key], trace[key]), key


def test_ablating_a_head_zeroes_its_context_and_changes_nothing_upstream(model, ids, trace):
    ablated = capture(model, ids, Interventions({(1, 2)}))
    ctx = ablated["blocks/1/attn/context"]
    assert np.all(ctx[:, 2, :] == 0)
    assert np.array_equal(ctx[:, [0, 1, 3], :], trace["blocks/1/attn/context"][:, [0, 1, 3], :])
    upstream = [
        s.key
        for s in trace.stages
        if s.layer == 0 or s.layer is None and s.key.startswith("embeddings")
    ]
    upstream += [
        "blocks/1/ln1/mean",
        "blocks/1/ln1/var",
        "blocks/1/ln1/out",
        "blocks/1/attn/weights",
    ]
    for key in upstream:
        assert np.array_equal(ablated[key], trace[key]), key
    assert not np.allclose(ablated["blocks/1/attn/out"], trace["blocks/1/attn/out"])
    # the ablation acts before out_proj: recompute the attention output from the zeroed context
    att = model.trf_blocks[1].att
    assert_close(
        ablated["blocks/1/attn/out"],
        _linear(ctx.reshape(len(ids), -1).astype(np.float64), att.out_proj),
    )


def test_mean_ablation_replaces_the_context_with_its_mean_over_positions(model, ids, trace):
    ablated = capture(model, ids, Interventions({(2, 0)}, mode="mean"))
    expected = trace["blocks/2/attn/context"][:, 0, :].astype(np.float64).mean(0)
    assert_close(
        ablated["blocks/2/attn/context"][:, 0, :],
        np.broadcast_to(expected, (len(ids), expected.shape[0])),
    )


def test_ablating_every_head_leaves_out_proj_bias(model, ids):
    heads = {(0, h) for h in range(CFG.n_heads)}
    ablated = capture(model, ids, Interventions(heads))
    bias = model.trf_blocks[0].att.out_proj.bias.detach().numpy()
    assert np.array_equal(
        ablated["blocks/0/attn/out"], np.broadcast_to(bias, (len(ids), CFG.emb_dim))
    )


def test_skipping_a_block_passes_its_input_through(model, ids, trace):
    skipped = capture(model, ids, Interventions(skip_layers={1}))
    assert np.array_equal(skipped["blocks/1/out"], skipped["blocks/0/out"])
    assert np.array_equal(skipped["blocks/0/out"], trace["blocks/0/out"])
    assert not np.allclose(skipped["logits/last"], trace["logits/last"])
    assert skipped.interventions == Interventions(skip_layers={1})


def test_backward_through_a_skipped_block(model, ids):
    trace = backward_step(model, ids, interventions=Interventions(skip_layers={1}))
    assert np.array_equal(trace.grad("blocks/1/out"), trace.grad("blocks/0/out"))
    reached = {key for key, _ in trace.backward.order}
    assert "blocks/1/attn/weights" not in reached and trace.grad("blocks/1/attn/weights") is None
    skipped_params = [p for p in trace.backward.params if p.name.startswith("trf_blocks.1.")]
    assert skipped_params and all(p.grad_norm == 0 for p in skipped_params)


def test_interventions_out_of_range(model, ids):
    with pytest.raises(ValueError, match="head 3.0 does not exist"):
        capture(model, ids, Interventions({(3, 0)}))
    with pytest.raises(ValueError, match="block 7 does not exist"):
        capture(model, ids, Interventions(skip_layers={7}))


def test_intervention_parsing():
    iv = Interventions.parse("0.3, 2.11", "5,1", "mean")
    assert iv == Interventions({(0, 3), (2, 11)}, {1, 5}, "mean")
    assert iv.describe() == "heads off (mean): L0.H3, L2.H11; blocks skipped: 1, 5"
    assert iv.toggle_head(0, 3).toggle_layer(5) == Interventions({(2, 11)}, {1}, "mean")
    for bad in ("3", "a.b", "1.2.3"):
        with pytest.raises(ValueError, match="LAYER.HEAD"):
            Interventions.parse(bad)
    with pytest.raises(ValueError, match="block numbers"):
        Interventions.parse("", "x")
    with pytest.raises(ValueError, match="zero' or 'mean"):
        Interventions(mode="half")


# ---- compare ----


def test_compare_against_independent_computation(model, ids, trace):
    iv = Interventions({(0, 1), (2, 3)})
    other = capture(model, ids, iv, track_token_ids=trace["logits/topk_ids"][:, 0])
    result = compare(trace, other)
    assert result.delta_loss == pytest.approx(other.loss - trace.loss)
    p = torch.softmax(torch.tensor(trace["logits/last"], dtype=torch.float64), -1)
    q = torch.softmax(torch.tensor(other["logits/last"], dtype=torch.float64), -1)
    assert result.kl_last == pytest.approx(float((p * (p.log() - q.log())).sum()), rel=1e-6)
    assert result.kl_last > 0
    with torch.no_grad(), _ablated_model(model, iv) as ablated:
        probs = torch.softmax(ablated(torch.tensor([ids]))[0].double(), -1)
    expected = probs[torch.arange(len(ids)), torch.tensor(np.array(result.top1_ids_before))].numpy()
    assert_close(result.pred_prob_after, expected, atol=1e-7)
    assert_close(
        result.delta_top1_prob,
        other["logits/topk_probs"][:, 0].astype(np.float64) - trace["logits/topk_probs"][:, 0],
    )


def test_compare_without_tracking_is_exact_where_it_can_be(model, ids, trace):
    other = capture(model, ids, Interventions({(0, 1)}))
    result = compare(trace, other)
    tracked = compare(
        trace,
        capture(
            model, ids, Interventions({(0, 1)}), track_token_ids=trace["logits/topk_ids"][:, 0]
        ),
    )
    known = ~np.isnan(result.pred_prob_after)
    assert known[-1] and known.sum() >= len(ids) // 2
    assert_close(result.pred_prob_after[known], tracked.pred_prob_after[known], atol=1e-7)


def test_compare_needs_the_same_prompt(model, trace):
    with pytest.raises(ValueError, match="same prompt"):
        compare(trace, capture(model, [1, 2, 3]))


class _ablated_model:
    """The test's own ablation: a copy of the model whose out_proj ignores the chosen heads'
    input columns (the same as zeroing their context vectors)."""

    def __init__(self, model, interventions):
        self.copy = copy.deepcopy(model)
        with torch.no_grad():
            d = CFG.emb_dim // CFG.n_heads
            for layer, head in interventions.ablate_heads:
                self.copy.trf_blocks[layer].att.out_proj.weight[:, head * d : (head + 1) * d] = 0

    def __enter__(self):
        return self.copy

    def __exit__(self, *exc):
        return False


# ---- the model is left as it was ----


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_pristine(model, snapshot):
    for name, module in model.named_modules():
        assert not module._forward_hooks, name
        assert not module._forward_pre_hooks, name
        assert not module._backward_hooks, name
        assert not getattr(module, "_backward_pre_hooks", {}), name
    for name, p in model.named_parameters():
        assert p.grad is None, name
        assert not p._post_accumulate_grad_hooks, name
        assert not p._backward_hooks, name
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshot[key]), key
    assert not model.training


def test_after_every_run_no_hooks_same_weights_no_grad(model, ids):
    snapshot = _snapshot(model)
    capture(model, ids, Interventions({(0, 0)}, {1}))
    _assert_pristine(model, snapshot)
    backward_step(model, ids, interventions=Interventions({(1, 1)}), sgd_lr=0.1)
    _assert_pristine(model, snapshot)
    capture(model, ids, train=True, seed=1)
    _assert_pristine(model, snapshot)


@pytest.mark.parametrize("run", [capture, backward_step])
def test_after_a_run_that_raised_the_model_is_pristine(model, ids, run):
    snapshot = _snapshot(model)
    calls = []

    def stop_in_the_middle():
        calls.append(1)
        return len(calls) == 2

    with pytest.raises(Cancelled):
        run(model, ids, should_stop=stop_in_the_middle)
    _assert_pristine(model, snapshot)
    with pytest.raises(ValueError):
        run(model, ids, interventions=Interventions({(9, 9)}))
    _assert_pristine(model, snapshot)
    with pytest.raises(PromptError):
        run(model, list(range(CFG.context_length + 1)))
    _assert_pristine(model, snapshot)


def test_a_hook_that_fails_mid_backward_leaves_no_grad(model, ids, monkeypatch):
    import gpt_core.probe as probe

    snapshot = _snapshot(model)

    def failing_norm(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(probe.torch.linalg, "vector_norm", failing_norm)
    with pytest.raises(RuntimeError, match="boom"):
        backward_step(model, ids)
    monkeypatch.undo()
    _assert_pristine(model, snapshot)


# ---- modes, devices, memory, files ----


def test_train_mode_dropout_is_seeded(ids):
    m = _randomise(load_model(None, CFG.replace(drop_rate=0.3), seed=3)[0])
    a = capture(m, ids, train=True, seed=5)
    b = capture(m, ids, train=True, seed=5)
    c = capture(m, ids, train=True, seed=6)
    evaluated = capture(m, ids)
    assert np.array_equal(a["logits/last"], b["logits/last"])
    assert not np.array_equal(a["logits/last"], c["logits/last"])
    assert not np.array_equal(a["logits/last"], evaluated["logits/last"])
    assert not m.training
    state = torch.random.get_rng_state()
    capture(m, ids, train=True, seed=9)
    assert torch.equal(state, torch.random.get_rng_state())


def test_cuda_without_cuda_is_a_clear_error(model, ids):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match="CUDA was asked for"):
        capture(model, ids, device="cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        capture(model, ids, device="tpu")


@pytest.mark.cuda
def test_capture_and_backward_on_cuda_match_the_cpu(ids):
    m = _randomise(load_model(None, CFG, seed=3)[0])
    cpu_trace, cpu_back = capture(m, ids, device="cpu"), backward_step(m, ids, device="cpu")
    gpu_trace, gpu_back = capture(m, ids, device="cuda"), backward_step(m, ids, device="cuda")
    assert gpu_trace.device.startswith("cuda")
    for key in ("blocks/2/attn/weights", "final_norm/out", "logits/last"):
        assert isinstance(gpu_trace[key], np.ndarray)
        assert_close(gpu_trace[key], cpu_trace[key], rtol=1e-4, atol=1e-4)
    assert_close(
        gpu_back.grad("embeddings/sum"), cpu_back.grad("embeddings/sum"), rtol=1e-3, atol=1e-6
    )


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_two_hundred_captures_do_not_grow_memory(model, ids):
    for _ in range(20):
        capture(model, ids)
    before = _rss_bytes()
    for _ in range(200):
        capture(model, ids)
    grown = _rss_bytes() - before
    one_trace = capture(model, ids).nbytes
    # A leak of even one trace per run would grow memory by 200 traces.
    assert grown < 20 * one_trace, f"grew {grown / 2**20:.1f} MiB"


def test_npz_round_trip_is_lossless(model, ids, tmp_path):
    original = backward_step(
        model, ids, interventions=Interventions({(0, 1)}, {2}, "mean"), sgd_lr=0.1
    )
    path = original.save(tmp_path / "run.npz")
    loaded = Trace.load(path)
    assert set(loaded.keys()) == set(original.keys())
    for key in original:
        assert loaded[key].dtype == original[key].dtype
        assert np.array_equal(loaded[key], original[key]), key
    assert loaded.stages == original.stages
    assert loaded.token_strings == original.token_strings
    assert loaded.config == original.config and loaded.device == original.device
    assert loaded.interventions == original.interventions
    assert loaded.loss == original.loss and loaded.backward == original.backward
    with np.load(path, allow_pickle=False) as raw:
        for key in (
            "tokens/ids",
            "embeddings/token",
            "blocks/0/ln1/mean",
            "blocks/2/attn/weights",
            "final_norm/out",
            "logits/last",
            "logits/topk_ids",
            "logits/topk_probs",
            "grad/blocks/0/ff/gelu",
        ):
            assert key in raw.files


def test_bad_trace_files(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        Trace.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(TraceError, match="not a readable trace"):
        Trace.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(TraceError, match="not a GPT Explorer trace"):
        Trace.load(tmp_path / "other.npz")


def test_saving_where_it_cannot_write(trace, tmp_path):
    with pytest.raises(TraceError, match="cannot write"):
        trace.save(tmp_path / "no" / "such" / "dir" / "t.npz")


def test_keep_freed_memory_is_accepted_by_glibc():
    import platform

    from gpt_core import keep_freed_memory

    result = keep_freed_memory()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert result is True
    else:
        assert result in (True, False)
