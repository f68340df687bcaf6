"""The probe's backward step (against torch.autograd.grad), interventions, compare(), the
model left as it was after every run, and trace files."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt_core import (
    Cancelled,
    Interventions,
    PromptError,
    Trace,
    TraceError,
    backward_step,
    capture,
    compare,
)
from tests.probe_helpers import (
    CFG,
    ablated_model,
    assert_close,
    assert_pristine,
    autograd_reference,
    linear,
    snapshot,
    to_np,
)

# ---- gradients against torch.autograd.grad on our own model ----


@pytest.mark.parametrize("target", [None, (5, 1234)])
def test_backward_step_gradients_equal_autograd(model, ids, target):
    trace = backward_step(model, ids, target=target)
    loss, acts, param_grads = autograd_reference(model, ids, target)
    assert trace.backward.loss == pytest.approx(loss, rel=1e-6)
    assert trace.backward.target == target
    for key, grad in acts.items():
        g = grad[0, :, 0] if key.endswith("/var") else grad[0]
        if key.endswith("attn/weights"):  # kept below the mask only (README, trace format)
            g = torch.tril(g)
        if key.endswith(("queries", "keys", "values")):  # W_query's ... output, [T, E]
            g = g.view(len(ids), CFG.n_heads, -1)  # [T, H, d_head]: head h's columns
        assert_close(trace.grad(key), to_np(g), atol=1e-8)
    names = [n for n, _ in model.named_parameters()]
    assert [p.name for p in trace.backward.params] == names
    for info, grad, (_, p) in zip(
        trace.backward.params, param_grads, model.named_parameters(), strict=True
    ):
        assert info.grad_norm == pytest.approx(grad.norm().item(), rel=1e-5, abs=1e-9)
        assert info.weight_norm == pytest.approx(p.norm().item(), rel=1e-5)
        assert info.ratio == pytest.approx(info.grad_norm / info.weight_norm)


@pytest.mark.parametrize("at_last", [False, True])
def test_the_logits_gradient_is_the_last_positions(model, ids, at_last):
    """grad/logits/last against torch.autograd.grad of the loss with respect to the logits of
    a plain forward, read at the last position (the whole-prompt loss reaches position 0)."""
    target = (len(ids) - 1, 1234) if at_last else None
    trace = backward_step(model, ids, target=target)
    logits = model(torch.tensor([ids]))[0]  # [T, vocab]
    if target is None:
        loss = F.cross_entropy(logits[:-1], torch.tensor(ids[1:]))
    else:
        loss = -torch.log_softmax(logits[target[0]], dim=-1)[target[1]]
    (grad,) = torch.autograd.grad(loss, logits)  # [T, vocab]
    assert_close(trace["grad/logits/last"], to_np(grad[-1]), atol=1e-8)


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
    stage_keys = {s.key for s in trace.stages if s.layout not in ("top_k", "causal_scores")}
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
    _, _, grads = autograd_reference(model, ids)
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
        "blocks/1/attn/queries",
        "blocks/1/attn/keys",
        "blocks/1/attn/values",
        "blocks/1/attn/scores",
        "blocks/1/attn/weights",
    ]
    for key in upstream:
        assert np.array_equal(ablated[key], trace[key]), key
    assert not np.allclose(ablated["blocks/1/attn/out"], trace["blocks/1/attn/out"])
    # the ablation acts before out_proj: recompute the attention output from the zeroed context
    att = model.trf_blocks[1].att
    assert_close(
        ablated["blocks/1/attn/out"],
        linear(ctx.reshape(len(ids), -1).astype(np.float64), att.out_proj),
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
    for name in ("queries", "keys", "values", "scores", "weights", "out"):  # what it computed
        key = f"blocks/1/attn/{name}"
        assert np.array_equal(skipped[key], trace[key]), key


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
    # one past the last head, block and layer; and below the first
    for bad in ({(0, CFG.n_heads)}, {(CFG.n_layers, 0)}, {(0, -1)}):
        with pytest.raises(ValueError, match="does not exist"):
            capture(model, ids, Interventions(bad))
    for bad in ({CFG.n_layers}, {-1}):
        with pytest.raises(ValueError, match="does not exist"):
            capture(model, ids, Interventions(skip_layers=bad))


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
    with torch.no_grad(), ablated_model(model, iv) as ablated:
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


# ---- the model is left as it was ----


def test_after_every_run_no_hooks_same_weights_no_grad(model, ids):
    saved = snapshot(model)
    capture(model, ids, Interventions({(0, 0)}, {1}))
    assert_pristine(model, saved)
    backward_step(model, ids, interventions=Interventions({(1, 1)}), sgd_lr=0.1)
    assert_pristine(model, saved)
    capture(model, ids, train=True, dropout_seed=1)
    assert_pristine(model, saved)


@pytest.mark.parametrize("run", [capture, backward_step])
def test_after_a_run_that_raised_the_model_is_pristine(model, ids, run):
    saved = snapshot(model)
    calls = []

    def stop_in_the_middle():
        calls.append(1)
        return len(calls) == 2

    with pytest.raises(Cancelled):
        run(model, ids, should_stop=stop_in_the_middle)
    assert_pristine(model, saved)
    with pytest.raises(ValueError):
        run(model, ids, interventions=Interventions({(9, 9)}))
    assert_pristine(model, saved)
    with pytest.raises(PromptError):
        run(model, list(range(CFG.context_length + 1)))
    assert_pristine(model, saved)


def test_a_hook_that_fails_mid_backward_leaves_no_grad(model, ids, monkeypatch):
    import torch

    saved = snapshot(model)

    def failing_norm(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(torch.linalg, "vector_norm", failing_norm)
    with pytest.raises(RuntimeError, match="boom"):
        backward_step(model, ids)
    monkeypatch.undo()
    assert_pristine(model, saved)


# ---- files ----


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

    # glibc's mallopt accepts both settings; elsewhere (macOS, Windows, musl) it does nothing.
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is glibc
