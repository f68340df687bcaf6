"""The probe's forward pass, checked against recomputation from the captured inputs (numpy,
float64) and against transformers' GPT-2 with the same weights; train mode, devices, memory.
Backward steps, interventions, compare() and files: test_probe_backward.py."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt_core import DeviceError, backward_step, capture, load_model
from tests.hf_reference import build_hf_gpt2, save_hf_folder
from tests.probe_helpers import (
    CFG,
    assert_close,
    block_input,
    gelu,
    layer_norm,
    linear,
    randomise,
    to_np,
)

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
        "attn/queries",
        "attn/keys",
        "attn/values",
        "attn/scores",
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
        assert keys[3 + 18 * i : 3 + 18 * (i + 1)] == [f"blocks/{i}/{k}" for k in block]
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
    assert trace["blocks/1/attn/keys"].shape == (T, 4, 12)
    assert trace["blocks/1/attn/scores"].shape == (4, T, T)
    assert trace["blocks/1/ff/pre_gelu"].shape == (T, 4 * 48)
    assert trace["blocks/1/ln1/var"].shape == (T,)
    assert trace["logits/topk_ids"].shape == (T, 20)
    for stage in trace.stages:
        assert trace[stage.key].shape == stage.shape
        assert stage.explanation and stage.formula and stage.title and stage.operation
        if stage.layout != "top_k":
            assert trace[stage.key].dtype == np.float32
    assert trace.stage("blocks/2/ln2/out").layer == 2
    assert trace.stage("embeddings/sum").layer is None
    assert trace.device == "cpu" and trace.config == CFG
    assert list(trace.token_ids) == ids and len(trace.token_strings) == len(ids)


def test_arrays_are_read_only(trace):
    with pytest.raises(ValueError):
        trace["blocks/0/out"][0, 0] = 1.0


def test_head_weights_unpack_the_asked_head(model, ids):
    """head_weights on a fresh trace unpacks one head without the whole [H, T, T] block."""
    fresh = capture(model, ids)
    heads = [[fresh.head_weights(i, h) for h in range(CFG.n_heads)] for i in range(CFG.n_layers)]
    for i in range(CFG.n_layers):
        dense = fresh[f"blocks/{i}/attn/weights"]
        for h in range(CFG.n_heads):
            assert np.array_equal(heads[i][h], dense[h]), (i, h)


def test_embeddings(model, trace, ids):
    assert_close(trace["embeddings/token"], to_np(model.tok_emb.weight)[ids])
    assert_close(trace["embeddings/position"], to_np(model.pos_emb.weight)[: len(ids)])
    assert_close(
        trace["embeddings/sum"],
        trace["embeddings/token"].astype(np.float64) + trace["embeddings/position"],
    )


@pytest.mark.parametrize("layer", range(CFG.n_layers))
def test_attention_recomputed_from_the_captured_norm1_output(model, trace, layer):
    att = model.trf_blocks[layer].att
    x = trace[f"blocks/{layer}/ln1/out"].astype(np.float64)  # [T, emb]
    T, H, d = x.shape[0], CFG.n_heads, CFG.emb_dim // CFG.n_heads
    q = linear(x, att.W_query).reshape(T, H, d).transpose(1, 0, 2)
    k = linear(x, att.W_key).reshape(T, H, d).transpose(1, 0, 2)
    v = linear(x, att.W_value).reshape(T, H, d).transpose(1, 0, 2)
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
        linear(
            trace[f"blocks/{layer}/attn/context"].reshape(T, -1).astype(np.float64), att.out_proj
        ),
    )


@pytest.mark.parametrize("layer", range(CFG.n_layers))
def test_layer_norms_feed_forward_and_residuals(model, trace, layer):
    block = model.trf_blocks[layer]
    p = f"blocks/{layer}/"
    x_in = block_input(trace, layer).astype(np.float64)
    out, mean, var = layer_norm(x_in, block.norm1)
    assert_close(trace[p + "ln1/mean"], mean, atol=1e-6)
    assert_close(trace[p + "ln1/var"], var)
    assert_close(trace[p + "ln1/out"], out)
    assert_close(trace[p + "resid_mid"], x_in + trace[p + "attn/out"])
    out, mean, var = layer_norm(trace[p + "resid_mid"].astype(np.float64), block.norm2)
    assert_close(trace[p + "ln2/mean"], mean, atol=1e-6)
    assert_close(trace[p + "ln2/var"], var)
    assert_close(trace[p + "ln2/out"], out)
    assert_close(
        trace[p + "ff/pre_gelu"],
        linear(trace[p + "ln2/out"].astype(np.float64), block.ff.layers[0]),
    )
    assert_close(trace[p + "ff/gelu"], gelu(trace[p + "ff/pre_gelu"].astype(np.float64)))
    assert_close(
        trace[p + "ff/out"], linear(trace[p + "ff/gelu"].astype(np.float64), block.ff.layers[2])
    )
    assert_close(trace[p + "out"], trace[p + "resid_mid"].astype(np.float64) + trace[p + "ff/out"])


def test_final_norm_logits_top_k_and_loss(model, trace, ids):
    x = trace[f"blocks/{CFG.n_layers - 1}/out"].astype(np.float64)
    out, mean, var = layer_norm(x, model.final_norm)
    assert_close(trace["final_norm/out"], out)
    assert_close(trace["final_norm/var"], var)
    logits = trace["final_norm/out"].astype(np.float64) @ to_np(model.out_head.weight).T  # [T, V]
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
    from gpt_core.probe._logits import topk_rows

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
        assert_close(trace[f"blocks/{i}/attn/weights"], to_np(out.attentions[i][0]))
    assert_close(trace["embeddings/sum"], to_np(out.hidden_states[0][0]))
    for i in range(n - 1):
        assert_close(trace[f"blocks/{i}/out"], to_np(out.hidden_states[i + 1][0]), atol=1e-5)
    # transformers' last hidden state is taken after its final LayerNorm.
    assert_close(trace["final_norm/out"], to_np(out.hidden_states[n][0]), atol=1e-5)
    assert_close(trace["logits/last"], to_np(out.logits[0, -1]), atol=1e-5)


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
    assert_close(trace.grad("embeddings/sum"), to_np(grads[0][0]), atol=1e-7)
    for i in range(n - 1):
        assert_close(trace.grad(f"blocks/{i}/out"), to_np(grads[1 + i][0]), atol=1e-7)
    for i in range(n):  # kept below the mask only (README, trace format)
        expected = to_np(torch.tril(grads[n + i][0]))
        assert_close(trace.grad(f"blocks/{i}/attn/weights"), expected, atol=1e-7)


# ---- modes, devices, memory, files ----


def test_train_mode_dropout_is_seeded(ids):
    m = randomise(load_model(None, CFG.replace(drop_rate=0.3), seed=3)[0])
    a = capture(m, ids, train=True, dropout_seed=5)
    b = capture(m, ids, train=True, dropout_seed=5)
    c = capture(m, ids, train=True, dropout_seed=6)
    evaluated = capture(m, ids)
    assert np.array_equal(a["logits/last"], b["logits/last"])
    assert not np.array_equal(a["logits/last"], c["logits/last"])
    assert not np.array_equal(a["logits/last"], evaluated["logits/last"])
    assert not m.training
    state = torch.random.get_rng_state()
    capture(m, ids, train=True, dropout_seed=9)
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
    m = randomise(load_model(None, CFG, seed=3)[0])
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
