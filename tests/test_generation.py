import numpy as np
import pytest
import torch

from gpt_core import generate, pick_next_token
from gpt_core.model.generation import next_token_distribution


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


def _book_generate(model, idx, max_new_tokens, context_size, temperature, top_k, generator):
    """The book's generate() (chapter 5): top-k by masking below the k-th logit, then
    softmax(logits / temperature) and torch.multinomial, here with a seeded generator."""
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        if top_k is not None:
            top_logits, _ = torch.topk(logits, top_k)
            logits = torch.where(logits < top_logits[:, -1], torch.tensor(-torch.inf), logits)
        probs = torch.softmax(logits / temperature, dim=-1)
        idx = torch.cat((idx, torch.multinomial(probs, 1, generator=generator)), dim=1)
    return idx


def test_sampling_is_the_books_generate_with_a_seeded_generator(tiny_model, prompt_ids):
    for temperature, top_k, seed in [(1.0, None, 0), (1.5, 50, 3), (0.7, 5, 11)]:
        g = torch.Generator().manual_seed(seed)
        expected = _book_generate(
            tiny_model, torch.tensor([prompt_ids]), 6, 64, temperature, top_k, g
        )
        got = generate(tiny_model, prompt_ids, 6, temperature=temperature, top_k=top_k, seed=seed)
        assert got == expected[0].tolist(), (temperature, top_k, seed)


def test_sampling_at_temperature_one_is_not_greedy(tiny_model, prompt_ids):
    """The random tiny model's next-token distribution is nearly flat (no token above
    1e-4), so eight sampled tokens all matching greedy has probability below 1e-30."""
    with torch.no_grad():
        probs = torch.softmax(tiny_model(torch.tensor([prompt_ids]))[0, -1], -1)
    assert probs.max() < 1e-4
    n = len(prompt_ids)
    greedy = generate(tiny_model, prompt_ids, 8)
    a = generate(tiny_model, prompt_ids, 8, temperature=1.0, seed=123)
    assert len(a) == len(greedy) == n + 8 and a[:n] == prompt_ids
    assert a[n:] != greedy[n:]
    assert generate(tiny_model, prompt_ids, 8, temperature=1.0, seed=123) == a
    assert generate(tiny_model, prompt_ids, 8, temperature=1.0, seed=124) != a


def test_top_k_of_one_is_greedy_at_any_temperature(tiny_model, prompt_ids):
    greedy = generate(tiny_model, prompt_ids, 5)
    assert generate(tiny_model, prompt_ids, 5, temperature=3.0, top_k=1, seed=0) == greedy


@pytest.mark.parametrize(("temperature", "top_k"), [(1.0, None), (0.7, 7), (2.5, 1), (1.0, 2000)])
def test_next_token_distribution_against_numpy(temperature, top_k):
    logits = np.random.default_rng(1).normal(scale=3.0, size=1000).astype(np.float32)
    z = logits.astype(np.float64)
    keep = np.ones(z.shape, bool)
    if top_k is not None and top_k < z.size:
        keep = z >= np.sort(z)[::-1][top_k - 1]  # the k largest (no ties in this draw)
        assert keep.sum() == top_k
    e = np.where(keep, np.exp((z - z[keep].max()) / temperature), 0.0)
    expected = e / e.sum()
    got = next_token_distribution(torch.from_numpy(logits), temperature, top_k).probs
    got = got.astype(np.float64)
    assert np.all(got[~keep] == 0)
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-9)
    assert abs(got.sum() - 1) < 1e-5


def test_next_token_distribution_at_temperature_zero_is_one_hot_at_the_argmax():
    distribution = next_token_distribution(torch.tensor([0.0, 2.0, 2.0, -1.0]), 0.0, top_k=2)
    assert distribution.probs.tolist() == [0.0, 1.0, 0.0, 0.0]  # the first of a tie
    assert distribution.greedy and distribution.possible == 1


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
