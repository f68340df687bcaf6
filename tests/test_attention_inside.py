"""Inside attention: the queries, keys, values and scaled scores a trace holds (against
transformers' GPT-2 with the same weights, split into heads and scored here in float64), the
scores recomputed on access and never stored, one (query, key) pair step by step, each
stage's operation with the prompt's shapes, and the source line of every step."""

import inspect
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from gpt_core import PRESETS, Interventions, Trace, capture, load_model, stage_key
from gpt_core.analysis import (
    ATTENTION_STEPS,
    attention_pair,
    attention_source_lines,
    out_proj_arrays,
)
from gpt_core.model import attention
from gpt_core.probe import SECTIONS, STAGES, build_sections, operation
from gpt_core.probe.trace import make_stages
from tests.hf_reference import build_hf_gpt2, save_hf_folder
from tests.probe_helpers import CFG, linear

QKV = ("queries", "keys", "values")


def assert_relative(actual, expected, rtol):
    """max |actual - expected| <= rtol * max |expected|: relative to the array's scale."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    worst = np.max(np.abs(a - b))
    assert worst <= rtol * np.max(np.abs(b)), (
        f"max abs diff {worst:.3g}, scale {np.abs(b).max():.3g}"
    )


# ---- queries, keys, values and scores against transformers ----


def hf_attention_inputs(hf_model, ids):
    """Per block: transformers' q, k, v [T, H, d_head], split here from c_attn's output."""
    kept, handles = [], []
    for block in hf_model.transformer.h:
        handles.append(block.attn.c_attn.register_forward_hook(lambda m, a, o: kept.append(o)))
    try:
        with torch.no_grad():
            hf_model(torch.tensor([ids]))
    finally:
        for handle in handles:
            handle.remove()
    cfg = hf_model.config
    split = []
    for qkv in kept:  # [1, T, 3 E]: queries, keys, values side by side, heads in order
        q, k, v = qkv[0].double().numpy().reshape(len(ids), 3, cfg.n_head, -1).transpose(1, 0, 2, 3)
        split.append((q, k, v))
    return split


def check_against_transformers(hf_model, model, ids):
    trace = capture(model, ids)
    T = len(ids)
    for layer, (q, k, v) in enumerate(hf_attention_inputs(hf_model, ids)):
        for name, expected in zip(QKV, (q, k, v), strict=True):
            assert_relative(trace[stage_key(f"attn/{name}", layer)], expected, 1e-5)
        d_head = q.shape[-1]
        scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(d_head)  # [H, T, T], float64
        scores[:, np.triu(np.ones((T, T), dtype=bool), 1)] = -np.inf
        got = trace[stage_key("attn/scores", layer)]
        assert got.dtype == np.float32 and got.shape == scores.shape
        assert np.array_equal(np.isinf(got), np.isinf(scores))  # masked where, and only where
        assert_relative(got[np.isfinite(got)], scores[np.isfinite(scores)], 1e-5)
        assert np.all(np.isfinite(got[:, np.tril(np.ones((T, T), dtype=bool))]))


@pytest.fixture(scope="module")
def odd_pair(tmp_path_factory):
    """3 blocks, width 96, 6 heads of 16: no dimension that could stand in for another."""
    hf_model = build_hf_gpt2(n_embd=96, n_layer=3, n_head=6, n_positions=40, seed=5)
    model, _ = load_model(save_hf_folder(hf_model, tmp_path_factory.mktemp("hf_odd")))
    return hf_model, model


def test_queries_keys_values_and_scores_match_transformers(odd_pair):
    hf_model, model = odd_pair
    ids = torch.randint(0, 50257, (23,), generator=torch.Generator().manual_seed(4)).tolist()
    check_against_transformers(hf_model, model, ids)


@pytest.mark.slow
def test_queries_keys_values_and_scores_match_transformers_at_gpt2_small_width(tmp_path):
    """gpt2-small's width and heads (768, 12 x 64); two blocks keep it to a few seconds."""
    hf_model = build_hf_gpt2(n_embd=768, n_layer=2, n_head=12, n_positions=1024, seed=6)
    model, _ = load_model(save_hf_folder(hf_model, tmp_path))
    ids = torch.randint(0, 50257, (40,), generator=torch.Generator().manual_seed(5)).tolist()
    check_against_transformers(hf_model, model, ids)


def test_each_head_owns_its_own_columns_of_the_projections(model, trace):
    """Head h's query is features h d .. (h + 1) d - 1 of y W_query^T + b, recomputed here."""
    d = CFG.emb_dim // CFG.n_heads
    for layer in range(CFG.n_layers):
        att = model.trf_blocks[layer].att
        y = trace[stage_key("ln1/out", layer)].astype(np.float64)  # [T, E]
        for name, matrix in zip(QKV, (att.W_query, att.W_key, att.W_value), strict=True):
            full = linear(y, matrix)  # [T, E]
            got = trace[stage_key(f"attn/{name}", layer)]  # [T, H, d]
            for head in range(CFG.n_heads):
                assert_relative(got[:, head], full[:, head * d : (head + 1) * d], 1e-6)


# ---- scores: derived, never stored ----


def test_scores_are_derived_listed_in_order_and_never_stored(trace, tmp_path):
    assert STAGES["attn/scores"].derived and not STAGES["attn/queries"].derived
    keys = list(trace.keys())
    block = [k.removeprefix("blocks/1/") for k in keys if k.startswith("blocks/1/attn/")]
    assert block == ["attn/queries", "attn/keys", "attn/values", "attn/scores"] + [
        "attn/weights",
        "attn/context",
        "attn/out",
    ]
    sections = {s.name: s for s in build_sections(CFG) if s.layer == 0}
    assert sections["attention_steps"].keys == tuple(f"blocks/0/attn/{n}" for n in (*QKV, "scores"))
    assert sections["attention_steps"].key("scores") == "blocks/0/attn/scores"
    assert sections["attention"].keys[0] == "blocks/0/attn/weights"
    assert "attention" in SECTIONS and "attention_steps" in SECTIONS
    for layer in range(CFG.n_layers):
        key = stage_key("attn/scores", layer)
        assert key in trace and key not in trace.store
        assert trace.stage(key).shape == (CFG.n_heads, trace.n_tokens, trace.n_tokens)
    with np.load(trace.save(tmp_path / "t.npz")) as saved:
        assert "blocks/0/attn/queries" in saved.files
        assert not [name for name in saved.files if "scores" in name]


def test_scores_softmax_to_the_weights_and_each_head_alone_agrees(trace):
    for layer in range(CFG.n_layers):
        scores = trace[stage_key("attn/scores", layer)].astype(np.float64)  # [H, T, T]
        exps = np.exp(scores - scores.max(-1, keepdims=True))
        weights = trace[stage_key("attn/weights", layer)]
        assert np.max(np.abs(exps / exps.sum(-1, keepdims=True) - weights)) <= 1e-6
        for head in range(CFG.n_heads):
            assert np.array_equal(trace.head_scores(layer, head), scores[head])
    assert not trace[stage_key("attn/scores", 0)].flags.writeable


def test_one_heads_scores_and_weights_are_made_once_and_kept_read_only(trace):
    """A view reads them on every click: the second read is the first one's array."""
    fresh = replace(trace)  # nothing unpacked or derived yet
    for read, name in ((fresh.head_scores, "scores"), (fresh.head_weights, "weights")):
        first = read(1, 2)
        assert read(1, 2) is first and not first.flags.writeable
        assert np.array_equal(first, trace[stage_key(f"attn/{name}", 1)][2])


def test_scores_are_what_the_model_computes_bit_for_bit(model, trace):
    """The same expression on the same float32 queries and keys: no rounding apart."""
    T = trace.n_tokens
    for layer in range(CFG.n_layers):
        att = model.trf_blocks[layer].att
        with torch.no_grad():
            q, k, _ = att.project(torch.tensor(trace[stage_key("ln1/out", layer)])[None])
            scores = (q * att.head_dim**-0.5) @ k.transpose(2, 3)  # [1, H, T, T]
        scores.masked_fill_(torch.ones(T, T, dtype=torch.bool).triu(1), -torch.inf)
        assert np.array_equal(trace[stage_key("attn/scores", layer)], scores[0].numpy())


# ---- one (query, key) pair ----

PAIRS = [(0, 0, 0, 0), (1, 2, 0, 5), (1, 2, 7, 3), (2, 3, 7, 7), (0, 1, 4, 9), (2, 0, 18, 11)]


@pytest.mark.parametrize(("layer", "head", "query", "key"), PAIRS)
def test_a_pair_recomputes_its_weight_context_and_output(model, trace, layer, head, query, key):
    weight, bias = out_proj_arrays(model, layer)
    pair = attention_pair(trace, layer, head, query, key, weight, bias)
    d = CFG.emb_dim // CFG.n_heads
    assert np.array_equal(pair.q, trace[stage_key("attn/queries", layer)][query, head])
    assert np.array_equal(pair.k, trace[stage_key("attn/keys", layer)][key, head])
    assert pair.dot == pytest.approx(float(np.dot(pair.q.astype(np.float64), pair.k)), rel=1e-12)
    assert pair.scale == pytest.approx(1 / math.sqrt(d), rel=1e-15)
    assert pair.score == pytest.approx(pair.dot / math.sqrt(d), rel=1e-12)
    row = pair.row
    assert np.array_equal(row, trace[stage_key("attn/scores", layer)][head, query])
    assert np.all(np.isneginf(row[query + 1 :])) and np.all(np.isfinite(row[: query + 1]))
    weights_row = trace[stage_key("attn/weights", layer)][head, query]  # read here, not the pair's
    softmax = np.exp(row.astype(np.float64) - row.max())
    assert np.max(np.abs(softmax / softmax.sum() - weights_row)) <= 1e-6
    assert np.array_equal(pair.weights_row, weights_row)
    assert pair.masked == (key > query)
    if pair.masked:
        assert pair.weight == 0.0 and np.isneginf(row[key])
    else:
        assert pair.score == pytest.approx(float(row[key]), rel=1e-5, abs=1e-7)
        assert pair.exps[key] / pair.exp_sum == pytest.approx(weights_row[key], abs=1e-6)
        assert pair.weight == weights_row[key]
    assert pair.exps.shape == (query + 1,) and pair.row_max == row.max()
    assert pair.weighted_values.shape == (query + 1, d)
    context = trace[stage_key("attn/context", layer)][query, head]
    assert np.array_equal(pair.context, context)
    assert np.max(np.abs(pair.weighted_values.sum(0) - context)) <= 1e-6
    assert pair.out_proj_rows.shape == (d, CFG.emb_dim)
    assert np.array_equal(pair.out_proj_rows, weight.T[head * d : (head + 1) * d])
    heads = [attention_pair(trace, layer, h, query, key, weight, bias) for h in range(CFG.n_heads)]
    attn_out = trace[stage_key("attn/out", layer)][query]
    assert np.max(np.abs(sum(p.head_out for p in heads) + bias - attn_out)) <= 1e-6
    assert np.max(np.abs(pair.attn_out - attn_out)) <= 1e-6
    assert np.array_equal(pair.attn_out_trace, attn_out)


def test_a_pair_without_out_proj_and_of_a_switched_off_head(model, ids, trace):
    pair = attention_pair(trace, 1, 0, 3, 2)
    assert pair.out_proj_rows is None and pair.head_out is None and pair.attn_out is None
    assert not pair.ablated
    ablated = capture(model, ids, Interventions({(1, 0)}))
    pair = attention_pair(ablated, 1, 0, 3, 2, *out_proj_arrays(model, 1))
    assert pair.ablated and not np.any(pair.context)
    assert np.max(np.abs(pair.attn_out - ablated[stage_key("attn/out", 1)][3])) <= 1e-6


def test_a_pair_refuses_what_does_not_exist(model, trace):
    weight, bias = out_proj_arrays(model, 0)
    T = trace.n_tokens
    for args, message in [
        ((CFG.n_layers, 0, 0, 0), f"block {CFG.n_layers} does not exist"),
        ((-1, 0, 0, 0), "block -1 does not exist"),
        ((0, CFG.n_heads, 0, 0), f"head {CFG.n_heads} does not exist"),
        ((0, 0, T, 0), f"query position {T} does not exist: query positions are 0..{T - 1}"),
        ((0, 0, 0, T), f"key position {T} does not exist"),
        ((0, True, 0, 0), "head must be a whole number"),
        ((0, 0, 1.5, 0), "query position must be a whole number"),
    ]:
        with pytest.raises(ValueError, match=message.replace(".", r"\.")):
            attention_pair(trace, *args)
    with pytest.raises(ValueError, match="both"):
        attention_pair(trace, 0, 0, 1, 0, weight)
    with pytest.raises(ValueError, match=r"\[48, 47\] and \[48\]; this model's are \[48, 48\]"):
        attention_pair(trace, 0, 0, 1, 0, weight[:, :-1], bias)
    with pytest.raises(ValueError, match="block 5 does not exist"):
        out_proj_arrays(model, 5)


def test_a_pair_from_a_trace_without_queries_says_so(trace):
    store = {k: v for k, v in trace.store.items() if not k.endswith(("queries", "keys", "values"))}
    shapes = {k: v.shape for k, v in store.items()}
    older = replace(trace, store=store, stages=make_stages(CFG, shapes))
    assert "blocks/0/attn/scores" not in older
    with pytest.raises(ValueError, match="no attn/queries, attn/keys, attn/values for block 1"):
        attention_pair(older, 1, 0, 2, 1)


# ---- operations with the prompt's shapes ----


def test_every_stage_says_its_operation_with_the_prompts_shapes():
    small = PRESETS["gpt2-small"]
    texts = {name: operation(spec, small, 14) for name, spec in STAGES.items()}
    assert texts["attn/queries"] == (
        "[14, 768] @ W_query [768, 768] → [14, 768] → view [14, 12, 64] → transpose [12, 14, 64]"
    )
    assert texts["ff/out"] == "ff: [14, 768] @ [768, 3072] → GELU → @ [3072, 768] → [14, 768]"
    assert texts["attn/scores"].startswith("[12, 14, 64] · 64^-0.5 @ keys transposed")
    assert texts["embeddings/position"].startswith("positions 0..13 pick rows of pos_emb")
    for name, text in texts.items():
        assert text and "{" not in text and "}" not in text, name
        assert "14" in text, name


def test_trace_stages_carry_their_operation(trace):
    T = trace.n_tokens
    stage = trace.stage("blocks/2/attn/values")
    assert stage.operation == operation(STAGES["attn/values"], CFG, T)
    assert f"view [{T}, 4, 12]" in stage.operation


# ---- the source line of every step ----


def test_every_step_finds_its_source_line():
    found = attention_source_lines()
    assert tuple(found) == ATTENTION_STEPS
    file_lines = inspect.getsource(attention).splitlines()
    for step, lines in found.items():
        assert lines, step
        for line in lines:
            assert file_lines[line.number - 1] == line.text, (step, line)
    code = {step: " ".join(line.text for line in lines) for step, lines in found.items()}
    assert "self.W_key(x)" in code["project keys"]
    assert "**-0.5" in code["scale"] and "@ keys.transpose(2, 3)" in code["scores"]
    assert "masked_fill_" in code["mask"] and "torch.softmax" in code["softmax"]
    assert len(found["split heads"]) == 7  # split, three views, three transposes
    assert "self.out_proj(context)" in code["out_proj"]


def test_a_renamed_line_fails_the_lookup(monkeypatch):
    source = inspect.getsourcelines(attention.MultiHeadAttention)
    lines = [line.replace("torch.softmax(", "F.softmax(") for line in source[0]]
    monkeypatch.setattr(inspect, "getsourcelines", lambda obj: (lines, source[1]))
    with pytest.raises(LookupError, match="'softmax'"):
        attention_source_lines()


def test_loading_keeps_the_new_stages(trace, tmp_path):
    loaded = Trace.load(trace.save(tmp_path / "t.npz"))
    for key in ("blocks/2/attn/keys", "blocks/2/attn/scores"):
        assert np.array_equal(loaded[key], trace[key])
    assert loaded.stages == trace.stages


def test_the_default_key_is_the_heaviest_finite_weight_of_the_row(trace):
    from types import SimpleNamespace

    from gpt_core.analysis import default_key

    weights = trace.head_weights(1, 2)
    for t in (0, 3, trace.n_tokens - 1):
        assert default_key(trace, 1, 2, t) == int(np.argmax(weights[t, : t + 1]))
    row = np.tile([0.2, np.nan, 0.5, 0.3], (4, 1))  # a non-finite weight never wins, nor raises
    broken = SimpleNamespace(head_weights=lambda layer, head: row)
    assert default_key(broken, 0, 0, 0) == 0 and default_key(broken, 0, 0, 3) == 2
    assert default_key(SimpleNamespace(head_weights=lambda *_: row * np.nan), 0, 0, 3) == 0


def test_a_derived_stage_has_no_module_to_hook(model):
    from gpt_core.probe.hook_points import stage_module

    assert (
        stage_module(model, stage_key("attn/queries", 1)) is model.trf_blocks[1].att.queries_point
    )
    with pytest.raises(ValueError, match="derived from attn/queries, attn/keys"):
        stage_module(model, stage_key("attn/scores", 1))
