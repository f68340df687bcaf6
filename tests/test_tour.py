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
from explorer.state.tour_ends import EXAMPLE_TOP_K
from explorer.state.tour_text import number
from gpt_core import GPTConfig, Interventions, backward_step, capture, get_tokenizer
from gpt_core.analysis import count_parameters
from gpt_core.probe.sections import SECTIONS
from gpt_core.weights import random_model

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


# --- an independent forward: float64 numpy from the state dict ---
def _layer_norm(x, scale, shift):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * scale + shift


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _forward(model, ids):
    """Every intermediate the tour quotes, per block: {name: array}."""
    w = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    T, H, d = len(ids), CFG.n_heads, CFG.head_dim
    tok, pos = w["tok_emb.weight"][ids], w["pos_emb.weight"][:T]
    x = tok + pos
    run = {"tok": tok, "pos": pos, "x0": x, "blocks": []}
    for layer in range(CFG.n_layers):
        p = f"trf_blocks.{layer}."

        def lin(name, v, p=p):
            bias = w.get(p + name + ".bias")
            return v @ w[p + name + ".weight"].T + (0 if bias is None else bias)

        ln1 = _layer_norm(x, w[p + "norm1.scale"], w[p + "norm1.shift"])
        q, k, v = (lin(f"att.W_{n}", ln1).reshape(T, H, d) for n in ("query", "key", "value"))
        scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(d)  # [H, T, T]
        scores[:, np.triu(np.ones((T, T), bool), 1)] = -np.inf
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        context = np.einsum("hts,shd->thd", weights, v)  # [T, H, d]
        attn_out = lin("att.out_proj", context.reshape(T, H * d))
        mid = x + attn_out
        ln2 = _layer_norm(mid, w[p + "norm2.scale"], w[p + "norm2.shift"])
        pre = lin("ff.layers.0", ln2)
        ff_out = lin("ff.layers.2", _gelu(pre))
        block = dict(x=x, ln1=ln1, q=q, k=k, v=v, scores=scores, weights=weights)
        block.update(context=context, attn_out=attn_out, mid=mid, ln2=ln2, pre=pre, ff=ff_out)
        run["blocks"].append(block)
        x = mid + ff_out
    run["final_in"] = x
    final = _layer_norm(x, w["final_norm.scale"], w["final_norm.shift"])
    logits = final @ w["out_head.weight"].T
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    run["probs"] = probs / probs.sum(-1, keepdims=True)
    return run


def _norm(v):
    return float(np.linalg.norm(v))


def _expected(run, ids, layer, head, t, s):
    """What each step must quote, recomputed: step -> {name: (value, style)}."""
    b, x0 = run["blocks"][layer], run["x0"]
    row = b["weights"][head, t, : t + 1]
    order = [i for i in np.argsort(-row, kind="stable") if i != s]
    T = x0.shape[0]
    pos = run["pos"]
    top = np.argsort(-run["probs"][t])[:2]
    pre, gelu = b["pre"][t], _gelu(b["pre"][t])
    unit = int(np.argmax(gelu))
    return {
        "token_embedding": {
            "tokens": (T, "int"),
            "id": (ids[t], "int"),
            "norm": (_norm(run["tok"][t]), "num"),
        },
        "position_embedding": {
            "norm_0": (_norm(pos[0]), "num"),
            "norm_t": (_norm(pos[t]), "num"),
            "cosine": (pos[0] @ pos[t] / (_norm(pos[0]) * _norm(pos[t])), "num"),
        },
        "embedding_sum": {
            "token": (_norm(run["tok"][t]), "num"),
            "position": (_norm(pos[t]), "num"),
            "sum": (_norm(x0[t]), "num"),
        },
        "ln1": _ln(b["x"][t], b["ln1"][t]),
        "qkv": {
            "query_norm": (_norm(b["q"][t, head]), "num"),
            "key_norm": (_norm(b["k"][s, head]), "num"),
        },
        "scores": {
            "dot": (b["q"][t, head] @ b["k"][s, head], "num"),
            "score": (b["scores"][head, t, s], "num"),
            "row_max": (b["scores"][head, t, : t + 1].max(), "num"),
        },
        "mask": {
            "masked": (T * (T - 1) // 2, "int"),
            "cells": (T * T, "int"),
            "visible": (t + 1, "int"),
            "masked_weight": (0.0, "num"),
        },
        "softmax": {
            "weight": (row[s], "pct"),
            "second": (row[order[0]], "pct"),
            "row_sum": (1.0, "num"),
        },
        "context": {
            "context_norm": (_norm(b["context"][t, head]), "num"),
            "value_norm": (_norm(b["v"][s, head]), "num"),
            "weight": (row[s], "pct"),
            "out_norm": (_norm(b["attn_out"][t]), "num"),
        },
        "resid_mid": _residual(b["x"][t], b["attn_out"][t]),
        "ln2": _ln(b["mid"][t], b["ln2"][t]),
        "feed_forward": {
            "negative": ((pre < 0).mean(), "pct"),
            "unit_pre": (pre[unit], "num"),
            "unit_gelu": (gelu[unit], "num"),
            "out_norm": (_norm(b["ff"][t]), "num"),
        },
        "block_out": _residual(b["mid"][t], b["ff"][t]),
        "output": {
            "mean": (run["final_in"][t].mean(), "num"),
            "var": (run["final_in"][t].var(), "num"),
            "top": (run["probs"][t, top[0]], "pct"),
            "second": (run["probs"][t, top[1]], "pct"),
        },
        "sampling": {  # the state's settings: temperature 0, greedy
            **_softmax_quotes(run["probs"][t]),
            "example_possible": (EXAMPLE_TOP_K, "int"),
            "example_top": (
                run["probs"][t].max() / np.sort(run["probs"][t])[-EXAMPLE_TOP_K:].sum(),
                "pct",
            ),
        },
    }


def _softmax_quotes(p):
    return {
        "before_top": (p.max(), "pct"),
        "entropy_before": (-(p * np.log(p)).sum(), "num"),
    }


def _ln(x, out):
    return {
        "mean": (x.mean(), "num"),
        "var": (x.var(), "num"),
        "out_mean": (out.mean(), "num"),
        "out_std": (out.std(), "num"),
    }


def _residual(before, branch):
    return {
        "before": (_norm(before), "num"),
        "branch": (_norm(branch), "num"),
        "after": (_norm(before + branch), "num"),
    }


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
    expected = _expected(_forward(model, ids), ids, focus.layer, focus.head, focus.query, focus.key)
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
    p = _forward(model, ids)["probs"][-1]
    logits = np.log(p)  # the logits up to a constant, which the softmax ignores
    kept = np.sort(logits)[-5:] / 0.7
    after = np.exp(kept - kept.max()) / np.exp(kept - kept.max()).sum()
    expected = {
        **_softmax_quotes(p),
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
