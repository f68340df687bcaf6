"""Input attribution with stage edits (an SAE's feature switches): every method explains
the edited run, checked against a plain forward with the edit written here as a PyTorch
hook (autograd for the gradients, one full run per token for occlusion, the hooked run's
own attention weights for the rollout)."""

import numpy as np
import pytest
import torch

from gpt_core import get_tokenizer, load_model, stage_key
from gpt_core.analysis.input_attribution import Explained, attribute

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


@pytest.fixture(scope="module")
def edit(model):
    """A per-position nonlinear change of block 0's output, as feature ablation is one."""
    g = torch.Generator().manual_seed(3)
    width = model.cfg.emb_dim
    w, v = torch.randn(width, 8, generator=g), torch.randn(8, width, generator=g)
    return lambda out: out + torch.tanh(out @ w) @ v


def _f(model, ids, explained, edit, embeddings=None, weights=None):
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
        edited = float(_f(model, ids, explained, edit))
    assert result.value == pytest.approx(edited, rel=1e-5)
    assert abs(result.value - plain.value) > 1e-2  # the edit changes the quantity

    x = model.tok_emb.weight[torch.tensor(ids)].detach()[None].requires_grad_()
    (grad,) = torch.autograd.grad(_f(model, ids, explained, edit, x), x)
    expected = (x[0] * grad[0]).sum(-1).detach().numpy()
    np.testing.assert_allclose(result.scores["input_x_grad"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.scores["grad_norm"], grad[0].norm(dim=-1), rtol=1e-5)

    with torch.no_grad():
        for t in range(len(ids)):
            occluded = list(ids)
            occluded[t] = 50256
            change = edited - float(_f(model, occluded, explained, edit))
            assert result.scores["occlusion"][t] == pytest.approx(change, rel=1e-4, abs=1e-5)
        repeated = float(_f(model, [50256] * len(ids), explained, edit))
    assert result.baseline_value == pytest.approx(repeated, rel=1e-5, abs=1e-6)
    span = abs(result.value - result.baseline_value)
    assert result.completeness_gap < 0.02 * span  # IG integrates the edited function

    weights = []
    with torch.no_grad():
        _f(model, ids, explained, edit, weights=weights)
    n = len(ids)
    flow = np.eye(n)
    for layer_weights in weights:
        mixed = 0.5 * layer_weights[0].double().mean(0).numpy() + 0.5 * np.eye(n)
        flow = (mixed / mixed.sum(-1, keepdims=True)) @ flow
    np.testing.assert_allclose(result.scores["rollout"], flow[explained.position], atol=1e-6)
