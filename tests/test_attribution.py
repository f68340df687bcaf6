"""Input attributions against independent computations: torch.autograd.grad through the
plain model, one occluded run per token, integrated gradients' completeness, and attention
rollout in numpy with loops; with a stage edit (as feature switches make), the same against
a plain forward with the edit written as a PyTorch hook."""

import numpy as np
import pytest
import torch

from gpt_core import Interventions, capture, get_tokenizer, load_model, stage_key
from gpt_core.analysis.input_attribution import INPUT_ATTRIBUTION_METHODS, Explained, attribute
from tests.probe_helpers import probe_model

PROMPT = "The quick brown fox jumps over the lazy"


@pytest.fixture(scope="module")
def model():
    model, _ = load_model(None, "tiny", seed=7)
    with torch.no_grad():
        model.out_head.weight.mul_(20)  # logits that move visibly
    return model


@pytest.fixture(scope="module")
def ids():
    return get_tokenizer().encode(PROMPT)


def _f(model, ids, explained, embeddings=None):
    """The explained quantity by a plain forward, token embeddings optionally replaced."""

    def hook(module, args, out):
        return embeddings if embeddings is not None else out

    handle = model.tok_emb.register_forward_hook(hook)
    try:
        logits = model(torch.tensor([ids]))[0, explained.position]
    finally:
        handle.remove()
    return logits[explained.target] - (logits[explained.foil] if explained.foil else 0)


@pytest.mark.parametrize("foil", [None, 11])
def test_gradient_methods_equal_autograd(model, ids, foil):
    explained = Explained(target=13, foil=foil, position=5)
    result = attribute(model, ids, explained, ("grad_norm", "input_x_grad"))
    x = model.tok_emb.weight[torch.tensor(ids)].detach()[None].requires_grad_()
    (grad,) = torch.autograd.grad(_f(model, ids, explained, x), x)
    assert np.allclose(result.scores["grad_norm"], grad[0].norm(dim=-1).numpy(), rtol=1e-5)
    assert np.allclose(result.scores["input_x_grad"], (x[0] * grad[0]).sum(-1).detach().numpy(),
                       rtol=1e-5, atol=1e-7)  # fmt: skip
    assert np.allclose(result.scores["grad_norm"][6:], 0)  # later tokens cannot matter
    with torch.no_grad():
        assert result.value == pytest.approx(float(_f(model, ids, explained)), rel=1e-5)


@pytest.fixture(scope="module")
def ig_256(model, ids):
    """Integrated gradients from the zero baseline in 256 midpoint steps, of the last
    position's target 13 against foil 11 (two tests read it)."""
    explained = Explained(target=13, foil=11, position=len(ids) - 1)
    methods = ("integrated_gradients",)
    return attribute(model, ids, explained, methods, steps=256, integration="midpoint")


def test_integrated_gradients_complete_as_steps_grow(model, ids, ig_256):
    """The midpoint rule (the Gauss–Legendre rule: test_integrated_gradients_rules)."""
    explained = Explained(target=13, foil=11, position=len(ids) - 1)
    methods = ("integrated_gradients",)
    gaps = [
        attribute(model, ids, explained, methods, steps=n, integration="midpoint").completeness_gap
        for n in (2, 16)
    ] + [ig_256.completeness_gap]
    result = ig_256
    span = abs(result.value - result.baseline_value)
    assert gaps[0] > gaps[1] > gaps[2]
    # the midpoint rule's error falls as 1/N^2 (a left or right Riemann sum's as 1/N)
    quarter = attribute(model, ids, explained, methods, steps=4, integration="midpoint")
    assert quarter.completeness_gap > 10 * gaps[1]
    assert gaps[2] < 0.01 * span
    assert result.scores["integrated_gradients"].sum() == pytest.approx(
        result.value - result.baseline_value, abs=0.01 * span
    )


def test_integrated_gradients_from_a_token_baseline(model, ids, ig_256):
    """With a token's embedding as the baseline at every position (positions fixed),
    f(baseline) is the model's quantity on a prompt of that token repeated."""
    explained = Explained(target=13, foil=11, position=len(ids) - 1)
    baseline = 262  # " the"
    result = attribute(
        model, ids, explained, ("integrated_gradients",), steps=16, baseline_token=baseline
    )
    with torch.no_grad():
        repeated = float(_f(model, [baseline] * len(ids), explained))
    assert result.baseline_value == pytest.approx(repeated, rel=1e-5, abs=1e-6)
    span = abs(result.value - result.baseline_value)
    assert span > 0.1 and result.completeness_gap < 0.01 * span
    zero = ig_256  # the same explained quantity from the zero baseline
    assert not np.allclose(zero.scores["integrated_gradients"],
                           result.scores["integrated_gradients"], atol=1e-3)  # fmt: skip


def test_occlusion_is_one_run_per_token(model, ids):
    explained = Explained(target=13, foil=None, position=len(ids) - 1)
    baseline = 50256
    result = attribute(model, ids, explained, ("occlusion",), baseline_token=baseline)
    with torch.no_grad():
        full = float(_f(model, ids, explained))
        for t in range(len(ids)):
            occluded = list(ids)
            occluded[t] = baseline
            expected = full - float(_f(model, occluded, explained))
            assert result.scores["occlusion"][t] == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_rollout_in_numpy_with_switches(model, ids):
    switches = Interventions.parse("0.1,0.2", "1")
    position = len(ids) - 1
    result = attribute(model, ids, Explained(13, None, position), ("rollout",),
                       interventions=switches)  # fmt: skip
    trace = capture(model, ids, switches)
    n = len(ids)
    flow = np.eye(n)
    for layer in range(model.cfg.n_layers):
        if layer == 1:
            continue  # skipped: the identity
        weights = trace[stage_key("attn/weights", layer)].astype(np.float64)
        on = [h for h in range(model.cfg.n_heads) if (layer, h) not in {(0, 1), (0, 2)}]
        mixed = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                mixed[i, j] = 0.5 * np.mean([weights[h, i, j] for h in on]) + 0.5 * (i == j)
            mixed[i] /= mixed[i].sum()
        flow = mixed @ flow
    assert np.allclose(result.scores["rollout"], flow[position], atol=1e-6)
    assert result.scores["rollout"].sum() == pytest.approx(1.0, abs=1e-5)


def test_rollout_through_three_blocks_in_numpy(ids):
    """Three blocks and no switches: the blocks' mixing matrices compose in order, the
    last block's on the left (a product of one mixing matrix cannot tell the order)."""
    model = probe_model()
    assert model.cfg.n_layers == 3
    position = len(ids) - 1
    result = attribute(model, ids, Explained(13, None, position), ("rollout",))
    trace = capture(model, ids)
    n = len(ids)
    share = np.eye(n)  # share[i, j]: token j's share of position i's stream
    for layer in range(3):
        weights = trace[stage_key("attn/weights", layer)].astype(np.float64)  # [H, T, T]
        mixed = 0.5 * weights.mean(0) + 0.5 * np.eye(n)
        mixed /= mixed.sum(-1, keepdims=True)
        after = np.zeros((n, n))
        for i in range(n):
            for j in range(n):  # position i reads position k, which holds share[k, j] of j
                after[i, j] = sum(mixed[i, k] * share[k, j] for k in range(n))
        share = after
    assert np.allclose(result.scores["rollout"], share[position], atol=1e-6)


def test_small_batches_give_the_same_scores_and_a_stop_is_honoured(model, ids, monkeypatch):
    """A long prompt runs fewer variants per forward: the budget forced down to one run per
    batch (and to three) changes nothing; a stop request ends the work with Cancelled."""
    from gpt_core import Cancelled
    from gpt_core.analysis import input_attribution as attribution

    explained, methods = (
        Explained(target=13, foil=None, position=6),
        ("integrated_gradients", "occlusion"),
    )
    whole = attribute(model, ids, explained, methods, steps=8)
    cfg = model.cfg
    per_run = 3 * cfg.n_layers * cfg.n_heads * (explained.position + 1) ** 2 * 4
    for runs in (1, 3):
        monkeypatch.setattr(attribution, "ATTENTION_BUDGET_BYTES", runs * per_run)
        calls = []
        monkeypatch.setattr(attribution, "_Quantity", _counting(attribution._Quantity, calls))
        batched = attribute(model, ids, explained, methods, steps=8)
        assert max(calls) == runs
        for method in methods:
            assert np.allclose(batched.scores[method], whole.scores[method], atol=1e-6), method
        monkeypatch.undo()
    counted = []
    attribute(model, ids, explained, methods, steps=8, progress=lambda *c: counted.append(c))
    runs = 1 + (8 + 1) + (explained.position + 1)  # gradient, IG and its baseline, occlusion
    assert counted[-1] == (runs, runs) and [d for d, _ in counted] == sorted(d for d, _ in counted)
    asked = []
    with pytest.raises(Cancelled):
        attribute(
            model, ids, explained, methods, should_stop=lambda: asked.append(1) or len(asked) > 2
        )


def _counting(cls, calls):
    class Counting(cls):
        def _forward(self, token_embeddings):
            calls.append(token_embeddings.shape[0])
            return super()._forward(token_embeddings)

    return Counting


def test_bad_requests(model, ids):
    with pytest.raises(ValueError, match="unknown method"):
        attribute(model, ids, Explained(1, None, 0), ("saliency",))
    with pytest.raises(ValueError, match="outside the prompt"):
        attribute(model, ids, Explained(1, None, 99))


def test_the_attribute_command_writes_every_method(tmp_path):
    import json

    from tests.cli_helpers import run_cli  # in-process: test_cli runs the entry point

    done = run_cli("attribute", "--preset", "tiny", "--seed", "7", "--prompt", PROMPT,
                   "--target", " dog", "--foil", " cat", "--method", "input_x_grad,rollout",
                   "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    model, _ = load_model(None, "tiny", seed=7)
    tokenizer = get_tokenizer()
    ids = tokenizer.encode(PROMPT)
    explained = Explained(tokenizer.encode(" dog")[0], tokenizer.encode(" cat")[0], len(ids) - 1)
    expected = attribute(model, ids, explained, ("input_x_grad", "rollout"))
    for method in ("input_x_grad", "rollout"):
        written = np.load(tmp_path / f"{method}.npy")
        assert written.dtype == np.float32 and written.shape == (len(ids),)
        assert np.allclose(written, expected.scores[method], atol=1e-6)
        assert (tmp_path / f"{method}.png").stat().st_size > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ids"] == ids and summary["position"] == len(ids) - 1
    assert summary["value"] == pytest.approx(expected.value, abs=1e-5)
    # every method, an earlier position, a token baseline and fewer steps
    out = tmp_path / "all"
    done = run_cli("attribute", "--preset", "tiny", "--seed", "7", "--prompt", PROMPT, "--target",
                   " dog", "--position", "4", "--steps", "8", "--baseline", " the", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    explained = Explained(tokenizer.encode(" dog")[0], None, 4)
    every = attribute(model, ids, explained, INPUT_ATTRIBUTION_METHODS, steps=8, baseline_token=262)
    for method in INPUT_ATTRIBUTION_METHODS:
        assert np.allclose(np.load(out / f"{method}.npy"), every.scores[method], atol=1e-5), method
        rows = (out / f"{method}.csv").read_text(encoding="utf-8").splitlines()
        assert rows[0].split(",")[0] == "method" and rows[1].split(",")[0] == method
        assert np.allclose([float(v) for v in rows[1].split(",")[1:]], every.scores[method],
                           atol=1e-5)  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["target_id"] == explained.target and summary["foil_id"] is None
    assert summary["position"] == 4 and summary["methods"] == list(INPUT_ATTRIBUTION_METHODS)
    assert summary["integrated_gradients_completeness_gap"] == pytest.approx(
        every.completeness_gap, abs=1e-5
    )
    assert summary["baseline_value"] == pytest.approx(every.baseline_value, abs=1e-5)
    bad = run_cli("attribute", "--preset", "tiny", "--prompt", "x", "--target", " a b",
                  "--out", str(tmp_path / "bad"))  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


@pytest.fixture(scope="module")
def edit(model):
    """A per-position nonlinear change of block 0's output, as feature ablation is one."""
    g = torch.Generator().manual_seed(3)
    width = model.cfg.emb_dim
    w, v = torch.randn(width, 8, generator=g), torch.randn(8, width, generator=g)
    return lambda out: out + torch.tanh(out @ w) @ v


def _edited_f(model, ids, explained, edit, embeddings=None, weights=None):
    """The explained quantity by a plain forward with `edit` hooked on block 0's output,
    token embeddings optionally replaced; `weights` collects each block's attention."""
    handles = [model.trf_blocks[0].register_forward_hook(lambda m, a, out: edit(out))]
    if embeddings is not None:
        handles.append(model.tok_emb.register_forward_hook(lambda m, a, out: embeddings))
    if weights is not None:
        for block in model.trf_blocks:
            point = block.att.weights_point
            handles.append(point.register_forward_hook(lambda m, a, out: weights.append(out)))
    try:
        logits = model(torch.tensor([ids]))[0, explained.position]
    finally:
        for handle in handles:
            handle.remove()
    return logits[explained.target] - (logits[explained.foil] if explained.foil else 0)


def test_every_method_explains_the_edited_run(model, ids, edit):
    explained = Explained(target=13, foil=11, position=len(ids) - 1)
    edits = {stage_key("out", 0): edit}
    methods = ("grad_norm", "input_x_grad", "integrated_gradients", "occlusion", "rollout")
    result = attribute(model, ids, explained, methods, steps=8, baseline_token=50256,
                       edits=edits)  # fmt: skip
    plain = attribute(model, ids, explained, ("input_x_grad",))
    with torch.no_grad():
        edited = float(_edited_f(model, ids, explained, edit))
    assert result.value == pytest.approx(edited, rel=1e-5)
    assert abs(result.value - plain.value) > 1e-2  # the edit changes the quantity

    x = model.tok_emb.weight[torch.tensor(ids)].detach()[None].requires_grad_()
    (grad,) = torch.autograd.grad(_edited_f(model, ids, explained, edit, x), x)
    expected = (x[0] * grad[0]).sum(-1).detach().numpy()
    np.testing.assert_allclose(result.scores["input_x_grad"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.scores["grad_norm"], grad[0].norm(dim=-1), rtol=1e-5)

    with torch.no_grad():
        for t in range(len(ids)):
            occluded = list(ids)
            occluded[t] = 50256
            change = edited - float(_edited_f(model, occluded, explained, edit))
            assert result.scores["occlusion"][t] == pytest.approx(change, rel=1e-4, abs=1e-5)
        repeated = float(_edited_f(model, [50256] * len(ids), explained, edit))
    assert result.baseline_value == pytest.approx(repeated, rel=1e-5, abs=1e-6)
    span = abs(result.value - result.baseline_value)
    assert result.completeness_gap < 0.02 * span  # IG integrates the edited function

    weights = []
    with torch.no_grad():
        _edited_f(model, ids, explained, edit, weights=weights)
    n = len(ids)
    flow = np.eye(n)
    for layer_weights in weights:
        mixed = 0.5 * layer_weights[0].double().mean(0).numpy() + 0.5 * np.eye(n)
        flow = (mixed / mixed.sum(-1, keepdims=True)) @ flow
    np.testing.assert_allclose(result.scores["rollout"], flow[explained.position], atol=1e-6)
