"""Logits agree with transformers' GPT-2 (eager attention) given the same weights."""

import pytest
import torch

from gpt_core import get_tokenizer, load_model
from tests.hf_reference import build_hf_gpt2, save_hf_folder

PROMPTS = [
    "Hello, world",
    "Every effort moves you",
    "The quick brown fox jumps over the lazy dog. 🦊 Ünïcödé <|endoftext|> again",
]


def _max_abs_diff(hf_model, model, ids):
    x = torch.tensor([ids])
    with torch.no_grad():
        expected = hf_model(x).logits
        got = model(x)
    return (expected - got).abs().max().item(), expected.abs().max().item()


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory):
    hf_model = build_hf_gpt2(n_embd=64, n_layer=3, n_head=4, n_positions=128, seed=0)
    folder = save_hf_folder(hf_model, tmp_path_factory.mktemp("hf_small"))
    model, cfg = load_model(folder)
    return hf_model, model, cfg


@pytest.mark.parametrize("prompt", PROMPTS)
def test_logits_match_transformers(small_pair, prompt):
    hf_model, model, _ = small_pair
    diff, scale = _max_abs_diff(hf_model, model, get_tokenizer().encode(prompt))
    print(f"max abs logit diff {diff:.2e} (logits up to {scale:.2f}) for {prompt[:20]!r}")
    assert diff <= 1e-5


def test_logits_match_transformers_at_full_context(small_pair):
    hf_model, model, cfg = small_pair
    ids = torch.randint(
        0, cfg.vocab_size, (cfg.context_length,), generator=torch.Generator().manual_seed(1)
    )
    diff, scale = _max_abs_diff(hf_model, model, ids.tolist())
    print(f"max abs logit diff {diff:.2e} at T = {cfg.context_length}")
    assert diff <= 1e-5


def test_config_read_from_the_folder(small_pair):
    _, _, cfg = small_pair
    assert (cfg.emb_dim, cfg.n_layers, cfg.n_heads, cfg.context_length) == (64, 3, 4, 128)
    assert cfg.qkv_bias


@pytest.mark.slow
def test_logits_match_transformers_gpt2_small_shape(tmp_path):
    hf_model = build_hf_gpt2(n_embd=768, n_layer=12, n_head=12, n_positions=1024, seed=2)
    folder = save_hf_folder(hf_model, tmp_path)
    model, cfg = load_model(folder)
    assert cfg.emb_dim == 768 and cfg.n_layers == 12
    diff, scale = _max_abs_diff(hf_model, model, get_tokenizer().encode("Every effort moves you"))
    print(f"gpt2-small shape: max abs logit diff {diff:.2e} (logits up to {scale:.2f})")
    assert diff <= 1e-5


def test_pytorch_model_bin_folder_with_untied_head_loads_too(tmp_path):
    hf_model = build_hf_gpt2(seed=3)
    hf_model.config.save_pretrained(tmp_path)
    state = hf_model.state_dict()
    state["lm_head.weight"] = state["lm_head.weight"].clone() + 0.01  # an untied head
    torch.save(state, tmp_path / "pytorch_model.bin")
    hf_model.lm_head.weight = torch.nn.Parameter(state["lm_head.weight"])
    model, _ = load_model(tmp_path)
    diff, _ = _max_abs_diff(hf_model, model, [1, 2, 3, 4])
    assert diff <= 1e-5
