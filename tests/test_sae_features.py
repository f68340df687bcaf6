"""features() against independent references: the activations at every hook against
transformers' GPT-2 (same random weights), and the splice / zero / steer / ablate runs
against a plain forward with a hook written here, on the module the hook name means."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpt_core import capture, load_model
from gpt_core.probe.hook_points import hooked
from gpt_core.sae import (
    FeatureSwitches,
    feature_card,
    features,
    load_sae,
    read_features,
    site_edits,
)
from tests.hf_reference import build_hf_gpt2, save_hf_folder
from tests.sae_helpers import make_sae, numpy_encode_decode, random_weights, sae_config, write_sae

D_SAE = 80
HOOKS = (
    "hook_resid_pre",
    "hook_resid_mid",
    "hook_resid_post",
    "hook_attn_out",
    "hook_mlp_out",
    "attn.hook_z",
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """transformers' GPT-2 (3 blocks, width 64) and the same weights in gpt_core."""
    hf = build_hf_gpt2(n_embd=64, n_layer=3, n_head=4)
    folder = save_hf_folder(hf, tmp_path_factory.mktemp("hf"))
    model, _ = load_model(str(folder))
    return hf, model.eval()


@pytest.fixture(scope="module")
def ids(tokenizer):
    return tokenizer.encode("When Mary and John went to the store, John gave a drink to")


def _hf_activation(hf, ids, hook: str, layer: int) -> np.ndarray:
    """The activation TransformerLens names `hook` in block `layer`, read off transformers'
    modules: [T, width]."""
    block = hf.transformer.h[layer]
    where = {
        "hook_resid_pre": (block, "pre"),
        "hook_resid_mid": (block.ln_2, "pre"),
        "hook_resid_post": (block, "out"),
        "hook_attn_out": (block.attn, "out"),
        "hook_mlp_out": (block.mlp, "out"),
        "attn.hook_z": (block.attn.c_proj, "pre"),  # heads merged: [T, H·d_head]
    }[hook]
    got = {}
    module, kind = where

    def keep(value) -> None:  # returns None: the hook only reads
        got.setdefault("x", value[0] if isinstance(value, tuple) else value)

    if kind == "pre":
        handle = module.register_forward_pre_hook(lambda m, args: keep(args))
    else:
        handle = module.register_forward_hook(lambda m, a, out: keep(out))
    try:
        with torch.no_grad():
            hf(torch.tensor([ids]))
    finally:
        handle.remove()
    return got["x"][0].double().numpy()


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("layer", [0, 2])
def test_features_read_the_activation_transformers_computes(tmp_path, pair, ids, hook, layer):
    hf, model = pair
    name = f"blocks.{layer}.{hook}"
    cfg = sae_config(64, D_SAE, name)
    tensors = random_weights(64, D_SAE, seed=layer)
    sae = load_sae(write_sae(tmp_path / "sae", cfg, tensors), model.cfg)
    run = features(model, ids, sae, top_k=D_SAE, losses=False)
    x = _hf_activation(hf, ids, hook, layer)
    acts, x_hat = numpy_encode_decode(x, tensors, cfg)
    np.testing.assert_allclose(run.readout.top_acts, -np.sort(-acts, axis=1), atol=2e-4)
    np.testing.assert_array_equal(run.readout.l0, (acts > 0).sum(1))
    np.testing.assert_allclose(run.readout.recon_error, ((x - x_hat) ** 2).sum(1) / 64, rtol=1e-4)
    spread = ((x - x.mean(0)) ** 2).sum(1)
    np.testing.assert_allclose(
        run.readout.recon_fraction, ((x - x_hat) ** 2).sum(1) / spread, rtol=1e-4
    )
    ev = 1 - ((x - x_hat) ** 2).sum() / spread.sum()
    assert run.readout.explained_variance == pytest.approx(ev, rel=1e-4)
    f = int(run.readout.top_ids[3, 0])
    np.testing.assert_allclose(run.readout.feature_acts(f), acts[:, f], atol=2e-4)
    assert run.readout.density(f) == pytest.approx((acts[:, f] > 0).mean())


def _site_module(model, hook: str, layer: int):
    """Where the test writes: the module (and whether its input) the hook name means."""
    block = model.trf_blocks[layer]
    return {
        "hook_resid_pre": (block, "pre"),
        "hook_resid_mid": (block.resid_mid_point, "out"),
        "hook_resid_post": (block, "out"),
        "hook_attn_out": (block.att, "out"),
        "hook_mlp_out": (block.ff, "out"),
        "attn.hook_z": (block.att.context_point, "out"),
    }[hook]


def _loss_with(model, ids, hook: str, layer: int, write) -> tuple[float, np.ndarray]:
    """A plain forward with `write(x [T, width]) -> x'` at the site, by a hook written here;
    the mean next-token loss and the top-1 ids."""
    module, kind = _site_module(model, hook, layer)

    def flat(t):
        shape = t.shape
        return write(t.reshape(shape[1], -1)).reshape(shape).to(t.dtype)

    if kind == "pre":
        handle = module.register_forward_pre_hook(lambda m, args: (flat(args[0]),))
    else:
        handle = module.register_forward_hook(lambda m, a, out: flat(out))
    try:
        with torch.no_grad():
            logits = model(torch.tensor([ids]))[0]
    finally:
        handle.remove()
    loss = F.cross_entropy(logits[:-1], torch.tensor(ids[1:]))
    return float(loss), logits.argmax(-1).numpy()


def _plain_x(model, ids, hook, layer) -> torch.Tensor:
    seen = {}
    _loss_with(model, ids, hook, layer, lambda x: seen.setdefault("x", x.clone()))
    return seen["x"]


@pytest.mark.parametrize("hook", HOOKS)
def test_splice_zero_and_steer_equal_a_forward_with_the_vector_written(tmp_path, pair, ids, hook):
    _, model = pair
    layer = 1
    cfg = sae_config(64, D_SAE, f"blocks.{layer}.{hook}")
    tensors = random_weights(64, D_SAE, seed=11)
    sae = load_sae(write_sae(tmp_path / "sae", cfg, tensors), model.cfg)
    x = _plain_x(model, ids, hook, layer).double().numpy()
    _, x_hat = numpy_encode_decode(x, tensors, cfg)
    clean, _ = _loss_with(model, ids, hook, layer, lambda t: t)
    spliced, _ = _loss_with(model, ids, hook, layer, lambda t: torch.tensor(x_hat))
    zero, _ = _loss_with(model, ids, hook, layer, torch.zeros_like)
    push = 4.0 * tensors["W_dec"][7]
    steered, steered_top1 = _loss_with(model, ids, hook, layer, lambda t: t + push)

    run = features(model, ids, sae)
    assert (run.losses.clean, run.losses.spliced, run.losses.zero) == pytest.approx(
        (clean, spliced, zero), abs=1e-5
    )
    assert run.losses.recovered == pytest.approx((zero - spliced) / (zero - clean), rel=1e-4)
    steer = FeatureSwitches(steer=((7, 4.0),))
    switched = features(model, ids, sae, switches=steer)
    assert switched.losses.changed == pytest.approx(steered, abs=1e-5)
    assert switched.losses.clean == pytest.approx(clean, abs=1e-5)
    np.testing.assert_array_equal(switched.top1_ids, steered_top1)
    trace = capture(
        model, ids, edits=site_edits(sae, steer, model.cfg), device="cpu"
    )  # the switches for the window's runs
    assert trace.loss == pytest.approx(steered, abs=1e-5)


def _sae_at(tmp_path, model, ids, hook: str, layer: int, seed: int):
    """A random SAE at the site, its tensors, the plain run's activation there and the
    features the float64 formulas give (numpy)."""
    cfg = sae_config(64, D_SAE, f"blocks.{layer}.{hook}")
    tensors = random_weights(64, D_SAE, seed=seed)
    sae = load_sae(write_sae(tmp_path / "sae", cfg, tensors), model.cfg)
    x = _plain_x(model, ids, hook, layer).double().numpy()
    return sae, tensors, x, numpy_encode_decode(x, tensors, cfg)[0]


def test_ablating_a_feature_removes_its_contribution_at_the_site(tmp_path, pair, ids):
    _, model = pair
    hook, layer = "hook_resid_mid", 1
    sae, tensors, x, acts = _sae_at(tmp_path, model, ids, hook, layer, seed=12)
    on = int(np.argmax((acts > 0).sum(0)))
    off = [f for f in range(D_SAE) if not (acts[:, f] > 0).any()]
    assert off, "the random SAE needs a feature that never fires"
    removal = torch.tensor(acts[:, [on]] * tensors["W_dec"][on].double().numpy()[None])
    expected, _ = _loss_with(model, ids, hook, layer, lambda t: t - removal)
    ablated = features(model, ids, sae, switches=FeatureSwitches({on}))
    assert ablated.losses.changed == pytest.approx(expected, abs=1e-5)
    assert not ablated.readout.feature_acts(on).any()  # the switched features: f_on = 0
    inactive = features(model, ids, sae, switches=FeatureSwitches(set(off)))
    assert inactive.losses.changed == inactive.losses.clean  # nothing changes, exactly
    np.testing.assert_array_equal(inactive.top1_ids, features(model, ids, sae).top1_ids)


def test_ablating_every_feature_and_the_error_leaves_the_zeroed_site(tmp_path, pair, ids):
    """x = Σ f_i W_dec[i] + (x − Σ f_i W_dec[i]): switching every feature off and taking the
    rest (the error term with b_dec, computed here in float64) away leaves zero."""
    _, model = pair
    sae, tensors, x, acts = _sae_at(tmp_path, model, ids, "hook_resid_pre", 2, seed=13)
    rest = torch.tensor(x - acts @ tensors["W_dec"].double().numpy()).float()  # [T, 64]
    every = FeatureSwitches(frozenset(range(D_SAE)))
    edit = site_edits(sae, every, model.cfg)
    ((key, switch_off),) = edit.items()
    with torch.no_grad(), hooked(model, edits={key: lambda out: switch_off(out) - rest}):
        logits = model(torch.tensor([ids]))[0]
    loss = float(F.cross_entropy(logits[:-1], torch.tensor(ids[1:])))
    assert loss == pytest.approx(features(model, ids, sae).losses.zero, abs=1e-4)


def test_switches_on_an_attention_head_site_and_head_ablation_together(tmp_path, pair, ids):
    """With a head switched off upstream, the SAE reads the changed activation."""
    from gpt_core import Interventions

    _, model = pair
    sae = load_sae(make_sae(tmp_path / "z", 64, D_SAE, "blocks.1.attn.hook_z", seed=3), model.cfg)
    off = Interventions(frozenset({(1, 2)}))
    run = features(model, ids, sae, interventions=off, top_k=D_SAE, losses=False)
    trace = capture(model, ids, off, device="cpu")
    x = trace["blocks/1/attn/context"].reshape(len(ids), -1)
    assert not x[:, 32:48].any()  # head 2's features are zero
    np.testing.assert_allclose(
        run.readout.top_acts,
        read_features(sae, trace["blocks/1/attn/context"], top_k=D_SAE).top_acts,
        atol=1e-5,
    )


def test_feature_card_logit_effect(tmp_path, pair, ids):
    _, model = pair
    sae = load_sae(make_sae(tmp_path / "c", 64, D_SAE, "blocks.0.hook_mlp_out"), model.cfg)
    run = features(model, ids, sae, losses=False)
    card = feature_card(model, sae, 5, run.readout)
    effect = sae.W_dec[5].double() @ model.out_head.weight.detach().double().T
    order = torch.argsort(effect, descending=True)
    assert [row[0] for row in card.logits_up] == order[:10].tolist()
    assert [row[0] for row in card.logits_down] == order.flip(0)[:10].tolist()
    assert card.logits_up[0][2] == pytest.approx(float(effect.max()), rel=1e-5)
    z = load_sae(make_sae(tmp_path / "cz", 64, D_SAE, "blocks.1.attn.hook_z"), model.cfg)
    through_o = z.W_dec[5].double() @ model.trf_blocks[1].att.out_proj.weight.detach().double().T
    effect = through_o @ model.out_head.weight.detach().double().T
    assert feature_card(model, z, 5).logits_up[0][0] == int(effect.argmax())


def test_switches_as_data():
    switches = FeatureSwitches().toggle_ablate(4).with_steer(9, 2.5).with_steer(1, -1.0)
    assert switches.ablate == {4} and switches.steer == ((1, -1.0), (9, 2.5))
    assert switches.toggle_ablate(4).with_steer(9, None).with_steer(1, 0).is_empty
    assert FeatureSwitches.from_dict(switches.to_dict()) == switches
    assert switches.describe() == "features off: 4; steered: 1 by -1, 9 by 2.5"
    assert FeatureSwitches.parse(["4"], ["9:2.5", "1:-1"]) == switches
    acts = torch.tensor([[0.0, 3.0, 0.0, 0.0, 2.0, 0, 0, 0, 0, 0.5]])
    assert switches.switched(acts).tolist() == [[0.0, 2.0, 0.0, 0.0, 0.0, 0, 0, 0, 0, 3.0]]
    assert acts[0, 4] == 2.0  # the input is left as it was


@pytest.mark.parametrize("hook", ["hook_resid_mid", "attn.hook_z", "hook_mlp_out"])
def test_a_site_in_a_skipped_block_changes_nothing(tmp_path, pair, ids, hook):
    """The skipped block passes its input through, so a site inside it changes nothing:
    every row (run, spliced, zeroed) is the same run, whose loss a plain run with the
    block skipped gives."""
    from gpt_core import Interventions

    _, model = pair
    folder = make_sae(tmp_path / "s", 64, D_SAE, f"blocks.1.{hook}", seed=4)
    sae = load_sae(folder, model.cfg)
    skip = Interventions(skip_layers=frozenset({1}))
    losses = features(model, ids, sae, interventions=skip).losses
    trace = capture(model, ids, skip, device="cpu")
    expected = float(np.mean(trace["loss/per_token"]))
    assert losses.clean == pytest.approx(expected, abs=1e-5)
    assert losses.spliced == pytest.approx(expected, abs=1e-5)
    assert losses.zero == pytest.approx(expected, abs=1e-5)
