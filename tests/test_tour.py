"""The guided tour without a window: every step opens its section, every number it quotes
equals a plain float64 forward of the same weights (written here, no hooks), and it walks,
leaves, resumes, says when the weights are random and never reads an older run."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explorer.state import app_state as st
from explorer.state.sampling import GenerationSettings
from explorer.state.tour import (
    TOUR_STEPS,
    close_tour,
    focus_of,
    go_to_step,
    move_step,
    open_tour,
    resume_at,
    tour_page,
    with_result_on_tour,
)
from explorer.state.tour_text import number
from gpt_core import GPTConfig, Interventions, backward_step, capture, get_tokenizer
from gpt_core.analysis import count_parameters
from gpt_core.probe.sections import SECTIONS
from gpt_core.weights import random_model
from tests.tour_reference import expected_quotes, numpy_forward, softmax_quotes, tokens_quotes

CFG = GPTConfig.preset("tiny")  # 2 blocks, 4 heads
PROMPT = "Every effort moves you forward, one step at a time"
REL = 1e-4  # float32 run against a float64 recomputation


@pytest.fixture(scope="module")
def model():
    return random_model(CFG, seed=3).eval()


def _loaded(model, is_random=True):
    return st.LoadedModel(CFG, "random weights (seed 3)", is_random, count_parameters(model), {}, 0)


def _state_with_run(model, text, is_random=True, state=None):
    state = state or st.with_model(st.AppState(), _loaded(model, is_random))
    ids = tuple(get_tokenizer().encode(text))
    trace = capture(model, list(ids))
    key = st.RunKey(state.model.serial, "cpu", ids, Interventions())
    result = st.RunResult(key, trace, trace, None, {}, 0.0)
    return with_result_on_tour(st.with_prompt(state, text), result, text)


@pytest.fixture(scope="module")
def toured(model):
    return open_tour(_state_with_run(model, PROMPT))


def _check_quotes(said, expected):
    assert set(said.quoted) == set(expected), "the step quotes other numbers than checked"
    for name, (value, style) in expected.items():
        quoted = said.quoted[name]
        assert quoted == pytest.approx(value, rel=REL, abs=1e-6), name
        if abs(value) > 1e-4:  # a value near 0 (a mean after LayerNorm) is rounding noise
            assert number(quoted, style) in said.text, name


def test_the_focus_is_the_sharpest_look_back_at_the_last_position(toured, model):
    trace, focus = toured.trace, focus_of(toured.trace)
    t = trace.n_tokens - 1
    sharpest = max(
        trace.head_weights(layer, head)[t, 1:].max()
        for layer in range(CFG.n_layers)
        for head in range(CFG.n_heads)
    )
    assert focus.query == t and focus.key >= 1
    assert trace.head_weights(focus.layer, focus.head)[t, focus.key] == pytest.approx(sharpest)


def test_the_steps_follow_the_data_flow():
    """The issue's order, written out here (the tokens and sampling steps come with their
    views): each step and the section its view draws."""
    assert [(step.name, step.section, step.part, step.tab) for step in TOUR_STEPS] == [
        ("tokens", "tokens", "", "Stage"),
        ("token_embedding", "embeddings", "token", "Stage"),
        ("position_embedding", "embeddings", "position", "Stage"),
        ("embedding_sum", "embeddings", "sum", "Stage"),
        ("ln1", "ln1", "", "Stage"),
        ("qkv", "attention_steps", "1", "Stage"),
        ("scores", "attention_steps", "2", "Stage"),
        ("mask", "attention_steps", "3", "Stage"),
        ("softmax", "attention_steps", "4", "Stage"),
        ("context", "attention_steps", "5", "Stage"),
        ("resid_mid", "resid_mid", "", "Stage"),
        ("ln2", "ln2", "", "Stage"),
        ("feed_forward", "ff", "", "Stage"),
        ("block_out", "block_out", "", "Stage"),
        ("output", "output", "", "Stage"),
        ("sampling", "output", "sampling", "Stage"),
        ("backward", "output", "", "Backward step"),
    ]


@pytest.mark.parametrize("index", range(len(TOUR_STEPS)))
def test_every_step_opens_its_section_and_focus(toured, index):
    step, state = TOUR_STEPS[index], go_to_step(toured, index)
    focus = focus_of(state.trace)
    assert state.tour.step == index
    assert state.section.name == step.section
    per_block = SECTIONS[step.section].per_block
    assert state.section.layer == (focus.layer if per_block else None)
    assert (state.selection.head, state.position, state.key_position) == (
        focus.head,
        focus.query,
        focus.key,
    )


def test_every_number_a_step_quotes_is_the_runs(toured, model):
    focus = focus_of(toured.trace)
    ids = toured.trace.token_ids.tolist()
    expected = expected_quotes(
        numpy_forward(model, ids), ids, focus.layer, focus.head, focus.query, focus.key
    )
    expected["tokens"] = tokens_quotes(PROMPT, ids)
    for index, step in enumerate(TOUR_STEPS[:-1]):
        assert step.name in expected, f"recompute the numbers step {step.name!r} quotes"
        said = tour_page(go_to_step(toured, index)).said
        assert 2 <= said.text.count(". ") + 1 <= 5, said.text
        _check_quotes(said, expected[step.name])


def test_the_sampling_step_quotes_the_generate_panels_settings(toured, model):
    """With temperature 0.7, top-k 5: softmax(logits / 0.7) over the 5 largest, in float64."""
    ids = toured.trace.token_ids.tolist()
    settings = GenerationSettings(temperature=0.7, top_k=5)
    state = go_to_step(st.with_generation_settings(toured, settings), _step("sampling"))
    p = numpy_forward(model, ids)["probs"][-1]
    logits = np.log(p)  # the logits up to a constant, which the softmax ignores
    kept = np.sort(logits)[-5:] / 0.7
    after = np.exp(kept - kept.max()) / np.exp(kept - kept.max()).sum()
    expected = {
        **softmax_quotes(p),
        "possible": (5, "int"),
        "after_top": (after.max(), "pct"),
        "entropy_after": (-(after * np.log(after)).sum(), "num"),
    }
    _check_quotes(tour_page(state).said, expected)


def _step(name):
    return next(i for i, step in enumerate(TOUR_STEPS) if step.name == name)


def test_the_loss_and_the_backward_step_quote_autograd(toured, model):
    ids = toured.trace.token_ids.tolist()
    state = go_to_step(toured, len(TOUR_STEPS) - 1)
    ask = tour_page(state).said
    idx = torch.tensor([ids])
    model.requires_grad_(True)
    logits = model(idx)
    logits.retain_grad()
    loss = F.cross_entropy(logits[0, :-1], idx[0, 1:])
    tok = model.tok_emb(idx)  # the token embeddings' gradient, from a second graph
    tok.retain_grad()
    pos = model.pos_emb(torch.arange(len(ids)))
    again = model.out_head(model.final_norm(model.trf_blocks(tok + pos)))
    F.cross_entropy(again[0, :-1], idx[0, 1:]).backward()
    model.zero_grad()
    loss.backward()
    ratios = {  # a zero parameter (a fresh bias) has no finite ratio
        n: float(p.grad.norm() / p.detach().norm())
        for n, p in model.named_parameters()
        if p.detach().norm() > 0
    }
    model.zero_grad()
    uniform = (math.log(CFG.vocab_size), "num")
    _check_quotes(ask, {"loss": (loss.item(), "num"), "uniform": uniform})
    assert "Ctrl+B" in ask.text
    gradients = backward_step(model, ids)
    done = tour_page(st.with_gradients(state, gradients)).said
    top = max(ratios, key=ratios.get)
    assert f" {top}:" in done.text
    _check_quotes(
        done,
        {
            "loss": (loss.item(), "num"),
            "uniform": uniform,
            "stages": (len(gradients.backward.order), "int"),
            "first_grad": (float(logits.grad.norm()), "num"),
            "last_grad": (float(tok.grad.norm()), "num"),
            "ratio": (ratios[top], "num"),
        },
    )


def test_next_back_leave_and_resume(toured):
    last = len(TOUR_STEPS) - 1
    state = go_to_step(toured, 0)
    state = move_step(move_step(state, +1), +1)
    assert state.tour.step == 2
    assert move_step(go_to_step(state, 0), -1).tour.step == 0  # no step before the first
    assert move_step(go_to_step(state, last), +1).tour.step == last
    left = close_tour(go_to_step(state, 7))
    assert not left.tour.open and left.tour.step == 7
    back = open_tour(st.select_section(left, 0))  # the person wandered off meanwhile
    assert back.tour.open and back.tour.step == 7
    assert back.section.name == TOUR_STEPS[7].section
    assert resume_at(st.AppState(), 99).tour.step == last  # a remembered step out of range


def test_random_weights_say_so_and_trained_ones_do_not(model):
    random_state = open_tour(_state_with_run(model, PROMPT, is_random=True))
    trained = open_tour(_state_with_run(model, PROMPT, is_random=False))
    assert any("noise" in note for note in tour_page(random_state).notes)
    assert not any("noise" in note for note in tour_page(trained).notes)


def test_a_new_run_rewrites_the_step_and_moves_its_focus(toured, model):
    softmax = next(i for i, s in enumerate(TOUR_STEPS) if s.name == "softmax")
    before = go_to_step(toured, softmax)
    old_text = tour_page(before).said.text
    after = _state_with_run(model, "A completely different prompt about cats", state=before)
    assert after.tour.step == softmax
    focus = focus_of(after.trace)
    assert (after.selection.head, after.position, after.key_position) == (
        focus.head,
        focus.query,
        focus.key,
    )
    new_text = tour_page(after).said.text
    assert new_text != old_text and "cats" in new_text
    fresh = tour_page(
        go_to_step(
            open_tour(_state_with_run(model, "A completely different prompt about cats")), softmax
        )
    )
    assert new_text == fresh.said.text


def test_before_a_run_and_after_an_edit_it_says_what_to_do(model):
    empty = open_tour(st.with_model(st.AppState(), _loaded(model)))
    page = tour_page(empty)
    assert page.said is None and any("Type a prompt" in n for n in page.notes)
    assert empty.section.name == TOUR_STEPS[0].section
    edited = st.with_prompt(_state_with_run(model, PROMPT), PROMPT + " again")
    assert any("changed since this run" in n for n in tour_page(open_tour(edited)).notes)


@pytest.mark.parametrize("text", ["Hi", "<|endoftext|>", "a b"])
def test_every_step_reads_a_one_or_two_token_prompt(model, text):
    state = open_tour(_state_with_run(model, text))
    for index in range(len(TOUR_STEPS)):
        page = tour_page(go_to_step(state, index))
        assert page.said.text and "nan" not in page.said.text


def test_the_focus_skips_switched_off_heads_and_blocks(model):
    state = _state_with_run(model, PROMPT)
    focus = focus_of(state.trace)
    ids = state.trace.token_ids.tolist()
    off = Interventions(ablate_heads={(focus.layer, focus.head)}, skip_layers={1 - focus.layer})
    switched = capture(model, ids, off)
    other = focus_of(switched)
    assert other.layer == focus.layer and other.head != focus.head
    everything = Interventions(skip_layers=set(range(CFG.n_layers)))
    state = _state_with_run(model, PROMPT)
    key = replace(state.result.key, interventions=everything)
    skipped = capture(model, ids, everything)
    state = open_tour(
        with_result_on_tour(state, st.RunResult(key, skipped, skipped, None, {}, 0.0), PROMPT)
    )
    context = next(i for i, s in enumerate(TOUR_STEPS) if s.name == "context")
    assert "is switched off in this run" in tour_page(go_to_step(state, context)).said.text


def test_non_finite_weights_give_words_not_a_crash():
    broken = random_model(CFG, seed=3).eval()
    with torch.no_grad():
        broken.trf_blocks[0].att.W_query.weight[0, 0] = float("nan")
    state = open_tour(_state_with_run(broken, PROMPT))
    for index in range(len(TOUR_STEPS)):
        assert tour_page(go_to_step(state, index)).said.text
