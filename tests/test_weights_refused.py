"""Bad weights are refused before a model is built, each with a message that says what is
wrong: absurd configs, mistyped config fields, unreadable, random or dangling files."""

import json
import os
import resource
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import save_file

from gpt_core import GPTConfig, GPTModel, WeightsError, load_model, save_model
from gpt_core.weights.shapes import parameter_shapes
from tests.hf_reference import build_hf_gpt2, save_hf_folder


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_parameter_shapes_are_the_models(qkv_bias):
    cfg = GPTConfig.preset("tiny").replace(qkv_bias=qkv_bias, n_layers=3)
    expected = {k: tuple(v.shape) for k, v in GPTModel(cfg).state_dict().items()}
    assert parameter_shapes(cfg) == expected
    assert list(parameter_shapes(cfg)) == list(expected)


def test_absurd_metadata_is_refused_at_once_without_allocating(tiny_model, tmp_path):
    """A tiny checkpoint whose metadata claims 10,000 blocks of width 1,000,000 (about
    200 GB): refused from its tensors' names and shapes, in well under a second."""
    path = save_model(tiny_model, tmp_path / "tiny.safetensors")
    state = {k: v.contiguous() for k, v in tiny_model.state_dict().items()}
    absurd = tiny_model.cfg.replace(n_layers=10_000, emb_dim=1_000_000, n_heads=4)
    metadata = {"format": "pt", "gpt_core_config": json.dumps(absurd.to_dict())}
    save_file(state, str(path), metadata=metadata)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    start = time.perf_counter()
    with pytest.raises(WeightsError, match="tiny.safetensors does not fit a GPT .10000 layers"):
        load_model(path)
    assert time.perf_counter() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("layer_norm_epsilon", None, "layer_norm_epsilon must be a number, got null"),
        ("layer_norm_epsilon", "1e-5", 'layer_norm_epsilon must be a number, got "1e-5"'),
        ("n_layer", 2.5, "n_layer must be a whole number, got 2.5"),
        ("n_embd", True, "n_embd must be a whole number, got true"),
        ("activation_function", 3, "activation_function must be text, got 3"),
        ("scale_attn_weights", "yes", 'scale_attn_weights must be true or false, got "yes"'),
    ],
)
def test_config_json_fields_are_type_checked(tmp_path, field, value, message):
    folder = save_hf_folder(build_hf_gpt2(), tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="config.json: " + message.replace(".", r"\.")):
        load_model(folder)


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin"])
def test_random_bytes_are_not_a_checkpoint(tmp_path, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(os.urandom(4096).replace(b"PK", b"pk").lstrip(b"\x80") or b"x")
    with pytest.raises(WeightsError, match="is not a PyTorch checkpoint: torch.save writes"):
        load_model(path)


def test_a_dangling_link_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(tmp_path / "gone.safetensors", "gpt2")
    with pytest.raises(WeightsError, match="gpt2 is a link to .*gone.safetensors, which does not"):
        load_model("gpt2")


def test_a_missing_path_says_which(tmp_path):
    with pytest.raises(WeightsError, match=f"no such file or folder: {tmp_path}/nope.pth"):
        load_model(tmp_path / "nope.pth")


@pytest.mark.skipif(os.name != "posix", reason="uses POSIX users")
def test_an_unreadable_file_is_reported_as_permission_denied(tiny_model, tmp_path):
    """Run as an unprivileged user (root reads anything), where the file exists but may not
    be read."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    path = save_model(tiny_model, tmp_path / "locked.safetensors")
    path.chmod(0o000)
    tmp_path.chmod(0o755)
    code = (
        "import sys; from gpt_core import load_model, WeightsError\n"
        "try: load_model(sys.argv[1])\n"
        "except WeightsError as e: print(e)\n"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            user=65534,  # nobody
            env={**os.environ, "HOME": str(tmp_path)},
            timeout=120,
        )
    except PermissionError:
        pytest.skip("this Python lies where an unprivileged user cannot run it")
    if "Permission denied" in result.stderr and "locked" not in result.stderr:
        pytest.skip("this Python's packages lie where an unprivileged user cannot read them")
    assert f"cannot read {path}: permission denied" in result.stdout, result.stderr


def test_a_permission_error_is_named_as_such(tiny_model, tmp_path, monkeypatch):
    """The same as above where no unprivileged user can run the test: the operating
    system's refusal, as open() raises it."""
    path = save_model(tiny_model, tmp_path / "locked.safetensors")
    real_open = type(path).open

    def refuse(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(type(path), "open", refuse)
    with pytest.raises(WeightsError, match="permission denied"):
        load_model(path)


def test_a_checkpoint_that_does_not_fit_is_refused_before_building(tiny_model, tmp_path):
    state = dict(tiny_model.state_dict())
    state["trf_blocks.1.ff.layers.0.weight"] = torch.zeros(3, 3)
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"ff.layers.0.weight has shape \[3, 3\]"):
        load_model(path, "tiny")
