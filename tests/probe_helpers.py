"""Shared by test_probe.py and test_probe_backward.py: the probed model, float64 numpy
restatements of the model's layers, the test's own autograd reference and ablation, and the
"model left as it was" check."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from gpt_core import GPTConfig, load_model

CFG = GPTConfig(
    vocab_size=50257, context_length=48, emb_dim=48, n_heads=4, n_layers=3, qkv_bias=True
)
PROMPT = "The cat sat on the mat. Then it looked at the 🐟 and <|endoftext|> left"


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


def randomise(model, seed=0):
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


def probe_model(cfg=CFG):
    return randomise(load_model(None, cfg, seed=3)[0])


# ---- the model's layers restated in float64 numpy ----


def to_np(t):
    return t.detach().double().numpy()


def linear(x, layer):
    y = x @ to_np(layer.weight).T
    return y if layer.bias is None else y + to_np(layer.bias)


def gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def layer_norm(x, norm):
    """(output, per-token mean, per-token biased variance) of a [T, emb] input."""
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out = (x - mean) / np.sqrt(var + 1e-5) * to_np(norm.scale) + to_np(norm.shift)
    return out, mean[:, 0], var[:, 0]


def block_input(trace, i):
    return trace["embeddings/sum"] if i == 0 else trace[f"blocks/{i - 1}/out"]


# ---- gradients from torch.autograd.grad, with the test's own hooks ----


def autograd_reference(model, ids, target=None):
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
            f"blocks/{i}/attn/queries": block.att.W_query,  # [1, T, E], split by the test
            f"blocks/{i}/attn/keys": block.att.W_key,
            f"blocks/{i}/attn/values": block.att.W_value,
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


class ablated_model:
    """The test's own ablation: a copy of the model whose out_proj ignores the chosen heads'
    input columns (the same as zeroing their context vectors)."""

    def __init__(self, model, interventions):
        self.copy = copy.deepcopy(model)
        cfg = model.cfg
        with torch.no_grad():
            d = cfg.emb_dim // cfg.n_heads
            for layer, head in interventions.ablate_heads:
                self.copy.trf_blocks[layer].att.out_proj.weight[:, head * d : (head + 1) * d] = 0

    def __enter__(self):
        return self.copy

    def __exit__(self, *exc):
        return False


# ---- the model is left as it was ----


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_pristine(model, saved):
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
        assert torch.equal(value, saved[key]), key
    assert not model.training
