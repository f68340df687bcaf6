import pytest
import torch

from gpt_core import generate, pick_next_token


def _seed_generate_text_simple(model, idx, max_new_tokens, context_size):
    """The seed's loop, restated: crop, last position, argmax."""
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        idx = torch.cat((idx, torch.argmax(logits, dim=-1, keepdim=True)), dim=1)
    return idx


def test_greedy_is_the_seeds_generate_text_simple(tiny_model, prompt_ids):
    expected = _seed_generate_text_simple(tiny_model, torch.tensor([prompt_ids]), 8, 64)
    assert generate(tiny_model, prompt_ids, 8) == expected[0].tolist()


def test_greedy_crops_to_the_context(tiny_model):
    ids = list(range(100, 160))  # 60 of 64 positions
    out = generate(tiny_model, ids, 10)
    assert len(out) == 70
    expected = _seed_generate_text_simple(tiny_model, torch.tensor([ids]), 10, 64)
    assert out == expected[0].tolist()


def test_sampling_is_reproducible_with_a_seed(tiny_model, prompt_ids):
    a = generate(tiny_model, prompt_ids, 10, temperature=1.5, top_k=50, seed=7)
    b = generate(tiny_model, prompt_ids, 10, temperature=1.5, top_k=50, seed=7)
    c = generate(tiny_model, prompt_ids, 10, temperature=1.5, top_k=50, seed=8)
    assert a == b and a != c


def test_top_k_restricts_the_choice():
    logits = torch.tensor([0.0, 5.0, 4.0, -1.0, 3.0])
    g = torch.Generator().manual_seed(0)
    picks = {pick_next_token(logits, temperature=10.0, top_k=2, generator=g) for _ in range(200)}
    assert picks == {1, 2}


def test_stops_at_eos(tiny_model, prompt_ids):
    greedy = generate(tiny_model, prompt_ids, 6)
    first_new = greedy[len(prompt_ids)]
    out = generate(tiny_model, prompt_ids, 6, eos_id=first_new)
    assert out == prompt_ids + [first_new]


def test_bad_sampling_arguments():
    with pytest.raises(ValueError, match="temperature"):
        pick_next_token(torch.zeros(5), temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        pick_next_token(torch.zeros(5), temperature=1, top_k=0)


def test_generation_leaves_the_model_mode_alone(tiny_model, prompt_ids):
    tiny_model.train()
    try:
        generate(tiny_model, prompt_ids, 2)
        assert tiny_model.training
    finally:
        tiny_model.eval()
