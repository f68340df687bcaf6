import math

import numpy as np
import pytest
import torch

from gpt_core import GPTConfig, GPTModel, PromptError, count_parameters
from gpt_core.model import GELU, LayerNorm
from gpt_core.weights import random_model


def test_gelu_is_the_tanh_approximation():
    x = np.linspace(-8, 8, 10001)  # float64
    formula = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    got = GELU()(torch.from_numpy(x)).numpy()
    assert np.allclose(got, formula, rtol=0, atol=1e-12)
    # and not the exact, erf-based GELU, which differs by up to about 5e-4 here
    exact = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    assert np.max(np.abs(got - exact)) > 1e-4


def test_layer_norm_equals_torch_layer_norm():
    torch.manual_seed(0)
    x = 3.0 * torch.randn(2, 5, 48, dtype=torch.float64) + 1.5
    ours = LayerNorm(48).double()
    ref = torch.nn.LayerNorm(48, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        ours.scale.copy_(torch.randn(48))
        ours.shift.copy_(torch.randn(48))
        ref.weight.copy_(ours.scale)
        ref.bias.copy_(ours.shift)
    assert torch.allclose(ours(x), ref(x), rtol=0, atol=1e-12)


def test_module_and_parameter_names_are_the_books():
    model = GPTModel(GPTConfig.preset("tiny"))
    names = set(model.state_dict())
    expected_block = {
        "norm1.scale",
        "norm1.shift",
        "norm2.scale",
        "norm2.shift",
        "att.W_query.weight",
        "att.W_query.bias",
        "att.W_key.weight",
        "att.W_key.bias",
        "att.W_value.weight",
        "att.W_value.bias",
        "att.out_proj.weight",
        "att.out_proj.bias",
        "ff.layers.0.weight",
        "ff.layers.0.bias",
        "ff.layers.2.weight",
        "ff.layers.2.bias",
    }
    expected = {
        "tok_emb.weight",
        "pos_emb.weight",
        "final_norm.scale",
        "final_norm.shift",
        "out_head.weight",
    }
    expected |= {f"trf_blocks.{i}.{n}" for i in range(2) for n in expected_block}
    assert names == expected
    assert isinstance(model.trf_blocks[0].drop_shortcut, torch.nn.Dropout)
    assert isinstance(model.drop_emb, torch.nn.Dropout)
    assert isinstance(model.trf_blocks[0].ff.layers[1], GELU)


def test_gpt2_small_parameter_counts():
    with torch.device("meta"):
        model = GPTModel(GPTConfig.preset("gpt2-small"))
    counts = count_parameters(model)
    assert counts.total == 163_009_536
    assert counts.tied_total == 124_412_160
    assert counts.float32_bytes == 163_009_536 * 4
    assert f"{counts.float32_megabytes:.2f}" == "621.83"
    assert counts.by_module["out_head"] == 50257 * 768
    assert (
        counts.by_module["trf_blocks.0"] == 7_085_568
    )  # 163,009,536 = 12 blocks + 2 x 50257 x 768 + 1024 x 768 + 2 x 768
    assert counts.by_module["trf_blocks.0.att"] == 4 * 768 * 768 + 768


def test_parameter_count_of_a_really_tied_head():
    model = GPTModel(GPTConfig.preset("tiny"))
    model.out_head.weight = model.tok_emb.weight
    counts = count_parameters(model)
    assert counts.total == counts.tied_total


@torch.no_grad()
def test_causality_a_later_token_never_changes_earlier_logits(tiny_model):
    torch.manual_seed(0)
    ids = torch.randint(0, 50257, (1, 20))
    changed = ids.clone()
    changed[0, 12:] = torch.randint(0, 50257, (8,))
    a, b = tiny_model(ids), tiny_model(changed)
    assert torch.equal(a[0, :12], b[0, :12])
    assert not torch.allclose(a[0, 12:], b[0, 12:])


def test_prompt_longer_than_the_context_is_a_clear_error(tiny_model, tiny_cfg):
    ids = torch.zeros(1, tiny_cfg.context_length + 1, dtype=torch.long)
    with pytest.raises(PromptError, match="prompt has 65 tokens; this model sees at most 64"):
        tiny_model(ids)


def test_empty_prompt_and_bad_ids_are_clear_errors(tiny_model):
    with pytest.raises(PromptError, match="empty"):
        tiny_model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(PromptError, match="outside the vocabulary"):
        tiny_model(torch.tensor([[1, 50257]]))
    with pytest.raises(PromptError, match="outside the vocabulary"):
        tiny_model(torch.tensor([[-1, 2]]))


def test_random_init_follows_gpt2_scheme_and_is_seeded():
    cfg = GPTConfig(vocab_size=2000, context_length=256, emb_dim=256, n_heads=4, n_layers=8)
    a, b, c = random_model(cfg, seed=3), random_model(cfg, seed=3), random_model(cfg, seed=4)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    assert not torch.equal(a.tok_emb.weight, c.tok_emb.weight)
    block = a.trf_blocks[0]
    assert abs(a.tok_emb.weight.std().item() - 0.02) < 0.001
    assert abs(block.att.W_query.weight.std().item() - 0.02) < 0.001
    residual_std = 0.02 / (2 * cfg.n_layers) ** 0.5
    assert abs(block.att.out_proj.weight.std().item() - residual_std) < 0.0005
    assert abs(block.ff.layers[2].weight.std().item() - residual_std) < 0.0005
    assert torch.equal(block.ff.layers[0].bias, torch.zeros(4 * 256))
    assert torch.equal(block.norm1.scale, torch.ones(256))
    assert torch.equal(block.norm1.shift, torch.zeros(256))
    assert not a.training
