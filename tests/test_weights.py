"""Loading and saving weights from every source, and a clear WeightsError for every bad one."""

import json

import pytest
import torch
from safetensors.torch import save_file

from gpt_core import GPTConfig, WeightsError, load_model, save_model
from gpt_core.weights import hub
from tests.book_reference import book_model
from tests.hf_reference import build_hf_gpt2, save_hf_folder

BOOK_CFG = {
    "vocab_size": 50257,
    "context_length": 32,
    "emb_dim": 48,
    "n_heads": 4,
    "n_layers": 2,
    "drop_rate": 0.0,
    "qkv_bias": False,
}


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_and_reload_is_bit_identical(tiny_model, tiny_cfg, tmp_path):
    path = save_model(tiny_model, tmp_path / "tiny.safetensors")
    model, cfg = load_model(path)
    assert cfg == tiny_cfg
    assert _same_weights(model, tiny_model)
    assert not model.training


def test_save_replaces_an_existing_file_only_when_complete(tiny_model, tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"old")
    save_model(tiny_model, path)
    assert load_model(path)[1] == tiny_model.cfg
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_save_to_an_unwritable_place_is_a_weights_error(tiny_model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WeightsError, match="cannot write"):
        save_model(tiny_model, blocker / "sub" / "m.safetensors")


@pytest.mark.parametrize("nested", [False, True])
def test_book_state_dict_loads_with_no_renaming(tmp_path, nested):
    reference = book_model(BOOK_CFG, seed=5)
    state = reference.state_dict()
    assert "trf_blocks.0.att.mask" in state  # the book keeps its mask as a buffer
    payload = {"model_state_dict": state, "optimizer_state_dict": {}} if nested else state
    torch.save(payload, tmp_path / "model.pth")
    model, cfg = load_model(tmp_path / "model.pth", GPTConfig(**BOOK_CFG))
    ids = torch.tensor([[6109, 3626, 6100, 345, 11, 995]])
    with torch.no_grad():
        diff = (reference(ids) - model(ids)).abs().max().item()
    assert diff <= 1e-5


def test_book_state_dict_config_inferred_for_gpt2_widths(tmp_path):
    cfg = GPTConfig(context_length=16, emb_dim=768, n_heads=12, n_layers=1)
    source = load_model(None, cfg, seed=2)[0]
    torch.save(source.state_dict(), tmp_path / "m.pt")
    model, found = load_model(tmp_path / "m.pt")
    assert found == cfg
    assert _same_weights(model, source)


def test_book_state_dict_of_odd_width_without_config_asks_for_one(tmp_path):
    torch.save(book_model(BOOK_CFG).state_dict(), tmp_path / "m.pth")
    with pytest.raises(WeightsError, match="pass a config"):
        load_model(tmp_path / "m.pth")


def test_preset_name_as_config(tiny_model, tmp_path):
    torch.save(tiny_model.state_dict(), tmp_path / "m.pth")
    model, cfg = load_model(tmp_path / "m.pth", "tiny")
    assert cfg == GPTConfig.preset("tiny") and _same_weights(model, tiny_model)


def test_safetensors_state_dict_without_metadata(tiny_model, tmp_path):
    save_file(dict(tiny_model.state_dict()), str(tmp_path / "m.safetensors"))
    model, _ = load_model(tmp_path / "m.safetensors", "tiny")
    assert _same_weights(model, tiny_model)


def test_hf_weights_file_alone_points_to_its_folder(tmp_path):
    folder = save_hf_folder(build_hf_gpt2(), tmp_path / "hf")
    model_from_file, _ = load_model(folder / "model.safetensors")
    model_from_folder, _ = load_model(folder)
    assert _same_weights(model_from_file, model_from_folder)
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (folder / "model.safetensors").rename(lonely / "model.safetensors")
    with pytest.raises(WeightsError, match="config.json"):
        load_model(lonely / "model.safetensors")


# ---- every bad source raises WeightsError with an actionable message ----


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        load_model(tmp_path / "nope.safetensors")


def test_truncated_safetensors(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        load_model(path)


def test_truncated_pth(tiny_model, tmp_path):
    path = tmp_path / "m.pth"
    torch.save(tiny_model.state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_model(path, "tiny")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors", ".bin"])
@pytest.mark.parametrize(
    "content", [b"", b"this is a text file, not weights\n", bytes(range(256)) * 10]
)
def test_not_a_checkpoint(tmp_path, suffix, content):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(content)
    with pytest.raises(WeightsError) as info:
        load_model(path, "tiny")
    assert path.name in str(info.value)


def test_pickle_with_code_is_refused_not_run(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"model_state_dict": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="could run code"):
        load_model(tmp_path / "evil.pth", "tiny")


def test_non_tensor_state_dict(tmp_path):
    torch.save({"tok_emb.weight": [1, 2, 3]}, tmp_path / "m.pth")
    with pytest.raises(WeightsError, match="not a tensor"):
        load_model(tmp_path / "m.pth", "tiny")


def test_wrong_shape_names_the_tensor_and_both_shapes(tiny_model, tmp_path):
    state = dict(tiny_model.state_dict())
    state["trf_blocks.1.ff.layers.0.weight"] = torch.zeros(100, 32)
    torch.save(state, tmp_path / "m.pth")
    with pytest.raises(
        WeightsError,
        match=r"trf_blocks\.1\.ff\.layers\.0\.weight has shape \[100, 32\], "
        r"but the model expects \[128, 32\]",
    ):
        load_model(tmp_path / "m.pth", "tiny")


def test_missing_and_unexpected_keys(tiny_model, tmp_path):
    state = dict(tiny_model.state_dict())
    del state["final_norm.scale"]
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "m.pth")
    with pytest.raises(
        WeightsError, match=r"missing 1: final_norm\.scale; unexpected 1: extra\.weight"
    ):
        load_model(tmp_path / "m.pth", "tiny")


def test_qkv_bias_mismatch_gives_a_hint(tiny_model, tmp_path):
    torch.save(tiny_model.state_dict(), tmp_path / "m.pth")
    with pytest.raises(WeightsError, match="check qkv_bias"):
        load_model(tmp_path / "m.pth", GPTConfig.preset("tiny").replace(qkv_bias=False))


def test_config_that_disagrees_with_the_checkpoint(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    with pytest.raises(WeightsError, match="n_layers 3 vs 2"):
        load_model(path, GPTConfig.preset("tiny").replace(n_layers=3))


def test_unknown_preset_name(tmp_path):
    with pytest.raises(WeightsError, match="unknown preset"):
        load_model(None, "gpt-9")


def test_folder_without_config(tmp_path):
    with pytest.raises(WeightsError, match="without config.json"):
        load_model(tmp_path)


def test_hf_folder_without_weights(tmp_path):
    build_hf_gpt2().config.save_pretrained(tmp_path)
    with pytest.raises(WeightsError, match="no weights"):
        load_model(tmp_path)


def test_hf_folder_with_unsupported_config(tmp_path):
    folder = save_hf_folder(build_hf_gpt2(), tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["activation_function"] = "relu"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="activation_function"):
        load_model(folder)


def test_hf_folder_whose_weights_do_not_match_config(tmp_path):
    folder = save_hf_folder(build_hf_gpt2(n_embd=64), tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["n_embd"] = 32
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        WeightsError,
        match=r"wte.weight has shape \[50257, 64\], but config.json implies \[50257, 32\]",
    ):
        load_model(folder)


def test_unknown_format(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(WeightsError, match="unknown weights format"):
        load_model(tmp_path / "m.onnx")


def test_unknown_hub_id_while_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsError, match="'nobody/no-such-gpt2' is not in the Hugging Face"):
        load_model("nobody/no-such-gpt2")


def test_hub_download_reports_progress_and_loads(tmp_path, monkeypatch):
    """The download path, with the network replaced by a fake hf_hub_download that copies a
    local folder and drives the progress bar class it is given, as the real one does."""
    import huggingface_hub

    source = save_hf_folder(build_hf_gpt2(), tmp_path / "source")
    cache = tmp_path / "cache"
    cache.mkdir()
    asked = []

    def fake_download(repo_id, filename, tqdm_class=None, **_):
        asked.append((repo_id, filename))
        data = (source / filename).read_bytes()
        bar = tqdm_class(total=len(data), desc=filename)
        for start in range(0, len(data), 1 << 20):
            bar.update(min(1 << 20, len(data) - start))
        bar.close()
        (cache / filename).write_bytes(data)
        return str(cache / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda *a, **k: None)
    reports = []
    model, cfg = load_model("gpt2", progress=lambda f, m: reports.append((f, m)))
    assert asked == [
        ("openai-community/gpt2", "config.json"),
        ("openai-community/gpt2", "model.safetensors"),
    ]
    assert cfg.emb_dim == 64
    fractions = [f for f, m in reports if f is not None and "model.safetensors" in m]
    assert fractions and fractions[-1] == pytest.approx(1.0)
    assert fractions == sorted(fractions)


def test_hub_download_can_be_cancelled(tmp_path, monkeypatch):
    import huggingface_hub

    from gpt_core import Cancelled

    def fake_download(repo_id, filename, tqdm_class=None, **_):
        bar = tqdm_class(total=100, desc=filename)
        bar.update(10)
        raise AssertionError("the bar should have stopped the download")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda *a, **k: None)
    with pytest.raises(Cancelled):
        load_model("gpt2", cancel=lambda: True)


def test_hub_ids_and_paths_are_told_apart():
    assert hub.looks_like_hub_id("gpt2")
    assert hub.looks_like_hub_id("openai-community/gpt2-medium")
    assert not hub.looks_like_hub_id("weights.safetensors")
    assert not hub.looks_like_hub_id("/abs/path/model")
    assert not hub.looks_like_hub_id("a/b/c")
