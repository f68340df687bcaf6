"""Loading SAEs in SAELens's folder layout: encode/decode against a numpy float64 SAE written
from the formulas, for every architecture, both config generations, b_dec applied or not and
the folded input scaling; the hub cache; and every refusal, each with nothing loaded."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from gpt_core import GPTConfig
from gpt_core.errors import SAEError
from gpt_core.sae import SAE_RELEASES, load_sae, parse_source, site_of
from tests.sae_helpers import make_sae, numpy_encode_decode, random_weights, sae_config, write_sae

D_IN, D_SAE = 32, 96
HOOK = "blocks.1.hook_resid_pre"
TINY = GPTConfig.preset("tiny")


def _x(seed=1, n=7):
    return torch.randn(n, D_IN, generator=torch.Generator().manual_seed(seed)) * 2.0


CASES = [
    (arch, gen, b_dec)
    for arch in ("standard", "jumprelu", "topk")
    for gen in ("current", "pre-6.0")
    for b_dec in (True, False)
]


@pytest.mark.parametrize(("arch", "generation", "apply_b_dec"), CASES)
def test_encode_decode_equal_the_formulas_in_float64(tmp_path, arch, generation, apply_b_dec):
    extra = {"k": 5} if arch == "topk" else {}
    cfg = sae_config(D_IN, D_SAE, HOOK, arch, generation, apply_b_dec_to_input=apply_b_dec, **extra)
    tensors = random_weights(D_IN, D_SAE, arch, seed=3)
    sae = load_sae(write_sae(tmp_path / "sae", cfg, tensors), TINY)
    x = _x()
    acts, x_hat = numpy_encode_decode(x, tensors, cfg)
    got = sae.encode(x)
    np.testing.assert_allclose(got.numpy(), acts, atol=1e-5)
    np.testing.assert_allclose(sae.decode(got).numpy(), x_hat, atol=1e-5)
    np.testing.assert_allclose(sae.decode_sparse(got).numpy(), x_hat, atol=1e-5)
    assert 0 < (acts > 0).sum() < acts.size  # the case shows: some features on, some off
    if arch == "topk":
        assert ((got > 0).sum(-1) <= 5).all() and ((got > 0).sum(-1) == 5).any()


def test_jumprelu_is_strictly_above_the_threshold(tmp_path):
    """A pre-activation exactly at the threshold stays off (SAELens: pre > threshold)."""
    tensors = random_weights(D_IN, D_SAE, "jumprelu", seed=4)
    tensors["W_enc"] = torch.zeros(D_IN, D_SAE)
    tensors["b_enc"] = torch.full((D_SAE,), 0.25)
    tensors["threshold"] = torch.full((D_SAE,), 0.25)
    tensors["threshold"][:10] = 0.2
    sae = load_sae(write_sae(tmp_path / "s", sae_config(D_IN, D_SAE, HOOK, "jumprelu"), tensors))
    acts = sae.encode(_x())
    assert (acts[:, :10] == 0.25).all() and (acts[:, 10:] == 0).all()


def test_expected_average_only_in_is_folded_as_saelens_folds_it(tmp_path):
    cfg = sae_config(D_IN, D_SAE, HOOK, normalize_activations="expected_average_only_in")
    tensors = random_weights(D_IN, D_SAE, seed=5)
    folder = write_sae(tmp_path / "sae", cfg, tensors)
    with pytest.raises(SAEError, match="norm_scaling_factor"):
        load_sae(folder)
    sae = load_sae(folder, norm_scaling_factor=2.5)
    acts, x_hat = numpy_encode_decode(_x(), tensors, cfg, scale=2.5)
    np.testing.assert_allclose(sae.encode(_x()).numpy(), acts, atol=1e-5)
    np.testing.assert_allclose(sae.decode(sae.encode(_x())).numpy(), x_hat, atol=1e-5)


def test_old_bool_normalisation_and_defaults(tmp_path):
    cfg = sae_config(D_IN, D_SAE, HOOK, generation="pre-6.0", normalize_activations=False)
    sae = load_sae(make_sae(tmp_path / "s", D_IN, D_SAE, HOOK, generation="pre-6.0",
                            normalize_activations=False))  # fmt: skip
    assert sae.cfg.apply_b_dec_to_input and sae.architecture == "standard"
    assert sae.cfg.generation == "pre-6.0" and sae.hook_name == HOOK and "architecture" not in cfg


def test_fake_hub_cache_is_read_offline(tmp_path, monkeypatch):
    """REPO:FOLDER from a Hugging Face cache laid out as the hub client lays it out, with
    HF_HUB_OFFLINE on (conftest) so nothing could be downloaded."""
    from huggingface_hub import constants

    repo, folder = "someone/gpt2-saes", "blocks.1.hook_resid_pre"
    snapshot = tmp_path / "hub" / "models--someone--gpt2-saes" / "snapshots" / ("a" * 40)
    make_sae(snapshot / folder, D_IN, D_SAE, HOOK, seed=7)
    (tmp_path / "hub" / "models--someone--gpt2-saes" / "refs").mkdir()
    (tmp_path / "hub" / "models--someone--gpt2-saes" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    sae = load_sae(f"{repo}:{folder}", TINY)
    assert sae.source == f"{repo}:{folder}" and sae.d_sae == D_SAE
    with pytest.raises(SAEError, match=r"hf download someone/gpt2-saes --include 'blocks.0"):
        load_sae(f"{repo}:blocks.0.hook_resid_pre")  # not cached, no network: what to fetch


def test_built_in_releases_name_real_folders_and_parse():
    res = next(r for r in SAE_RELEASES if r.name == "gpt2-small-res-jb")
    assert res.repo_id == "jbloom/GPT2-Small-SAEs-Reformatted"
    assert "blocks.8.hook_resid_pre" in res.folders
    where = parse_source("gpt2-small-res-jb:blocks.8.hook_resid_pre")
    assert where.repo_id == res.repo_id and where.folder == "blocks.8.hook_resid_pre"
    tm = parse_source(
        "tommmcgrath/gpt2-small-mlp-out-saes:sae_group_gpt2_blocks.8.hook_mlp_out_24576:v1"
    )
    assert tm.folder.endswith(":v1") and tm.norm_scaling_factor == pytest.approx(0.9123762783479742)
    for release in SAE_RELEASES:  # every built-in folder is a hook this table knows, or named so
        assert len(release.folders) >= 12


@pytest.mark.parametrize(
    ("hook", "key"),
    [
        ("blocks.0.hook_resid_pre", "embeddings/sum"),
        ("blocks.1.hook_resid_pre", "blocks/0/out"),
        ("blocks.1.hook_resid_mid", "blocks/1/resid_mid"),
        ("blocks.0.hook_resid_post", "blocks/0/out"),
        ("blocks.1.hook_attn_out", "blocks/1/attn/out"),
        ("blocks.0.hook_mlp_out", "blocks/0/ff/out"),
        ("blocks.1.attn.hook_z", "blocks/1/attn/context"),
    ],
)
def test_hook_names_map_onto_stages(hook, key):
    assert site_of(hook, TINY).key == key


def _refusal(tmp_path, cfg_edit=None, tensor_edit=None, arch="standard", hook=HOOK, **load):
    cfg = sae_config(D_IN, D_SAE, hook, arch, **({"k": 4} if arch == "topk" else {}))
    tensors = random_weights(D_IN, D_SAE, arch)
    if cfg_edit:
        cfg_edit(cfg)
    if tensor_edit:
        tensor_edit(tensors)
    folder = write_sae(tmp_path / "bad", cfg, tensors)
    with pytest.raises(SAEError) as caught:
        load_sae(folder, TINY, **load)
    return str(caught.value)


REFUSED = {
    "no d_sae": (lambda c: c.pop("d_sae"), None, "'d_sae'"),
    "no hook name": (lambda c: c["metadata"].pop("hook_name"), None, "hook_name"),
    "no architecture": (lambda c: c.pop("architecture"), None, "'architecture'"),
    "unknown architecture": (lambda c: c.update(architecture="gated"), None, "'gated'"),
    "unknown normalisation": (lambda c: c.update(normalize_activations="layer_norm"), None, "'layer_norm'"),
    "block 14 of 2": (lambda c: c["metadata"].update(hook_name="blocks.14.hook_resid_pre"), None, "2 blocks"),
    "unknown hook": (lambda c: c["metadata"].update(hook_name="blocks.0.ln1.hook_normalized"), None, "supported"),
    "d_in not the width": (lambda c: c.update(d_in=64), lambda t: t.update(random_weights(64, D_SAE)), "has 32"),
    "wrong shape": (None, lambda t: t.update(W_dec=torch.zeros(D_SAE, D_IN + 1)), "W_dec has shape"),
    "wrong dtype": (None, lambda t: t.update(b_enc=torch.zeros(D_SAE, dtype=torch.int32)), "I32"),
    "missing tensor": (None, lambda t: t.pop("b_dec"), "'b_dec'"),
    "huge d_sae": (lambda c: c.update(d_sae=10**9), None, "d_sae = 1,000,000,000"),
    "d_sae mismatched": (lambda c: c.update(d_sae=D_SAE * 2), None, "W_enc has shape"),
    "non-finite": (None, lambda t: (t["W_enc"].view(-1)[:3].fill_(float("nan")), t["b_dec"].view(-1)[:1].fill_(float("inf"))), "W_enc (3), b_dec (1)"),
    "bool as int": (lambda c: c.update(d_in=True), None, "d_in must be a int"),
    "bad flag": (lambda c: c.update(apply_b_dec_to_input="yes"), None, "apply_b_dec_to_input"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_saes_are_refused_with_one_clear_message(tmp_path, case):
    cfg_edit, tensor_edit, fragment = REFUSED[case]
    assert fragment in _refusal(tmp_path, cfg_edit, tensor_edit)


def test_jumprelu_without_threshold_and_topk_without_k(tmp_path):
    assert "'threshold'" in _refusal(tmp_path, None, lambda t: t.pop("threshold"), arch="jumprelu")
    assert "'k'" in _refusal(tmp_path, lambda c: c.pop("k"), arch="topk")


def test_files_missing_unreadable_truncated(tmp_path):
    with pytest.raises(SAEError, match="no folder here"):
        load_sae(str(tmp_path / "nothing"))
    folder = make_sae(tmp_path / "s", D_IN, D_SAE, HOOK)
    (folder / "cfg.json").write_text("{not json")
    with pytest.raises(SAEError, match="not valid JSON"):
        load_sae(folder)
    folder = make_sae(tmp_path / "t", D_IN, D_SAE, HOOK)
    weights = folder / "sae_weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(SAEError, match="truncated"):
        load_sae(folder)
    weights.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(SAEError, match="bad header length"):
        load_sae(folder)
    (folder / "sae_weights.safetensors").unlink()
    with pytest.raises(SAEError, match="no sae_weights.safetensors"):
        load_sae(folder)
    (folder / "cfg.json").unlink()
    with pytest.raises(SAEError, match="no cfg.json"):
        load_sae(folder)


def test_huge_claims_are_refused_before_allocating(tmp_path, monkeypatch):
    """A header claiming a 10⁹-feature W_enc is refused from the header: load_tensors (the
    only reader of tensor bytes) is never reached."""
    import gpt_core.sae.loading as loading

    def never(*args):
        raise AssertionError("tensors read before the checks")

    monkeypatch.setattr(loading, "load_tensors", never)
    assert "d_sae" in _refusal(tmp_path, lambda c: c.update(d_sae=2_000_000))
    folder = make_sae(tmp_path / "h", D_IN, D_SAE, HOOK)
    header = json.dumps(
        {"W_enc": {"dtype": "F32", "shape": [D_IN, D_SAE], "data_offsets": [0, 4 * 10**10]}}
    )
    (folder / "sae_weights.safetensors").write_bytes(
        struct.pack("<Q", len(header)) + header.encode()
    )
    with pytest.raises(SAEError, match="truncated"):
        load_sae(folder)


def test_a_model_name_that_is_not_gpt2_is_a_warning(tmp_path):
    cfg = sae_config(D_IN, D_SAE, HOOK)
    cfg["metadata"]["model_name"] = "gemma-2b"
    sae = load_sae(write_sae(tmp_path / "g", cfg, random_weights(D_IN, D_SAE)), TINY)
    assert len(sae.warnings) == 1 and "gemma-2b" in sae.warnings[0]
    assert load_sae(make_sae(tmp_path / "ok", D_IN, D_SAE, HOOK)).warnings == ()
