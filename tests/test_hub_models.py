"""Real GPT-2 first: models in the Hugging Face cache load offline at once (found by
huggingface_hub's own cache lookup), the others download with progress in bytes and a
Cancel that stops the transfer, the window opens on a cached GPT-2 small, and File ▸
Recent remembers what was loaded. The network is never touched: the cache is built in
the layout huggingface_hub writes, and downloads go through a fake hf_hub_download."""

import pytest

from explorer.app import build_window
from explorer.commands.parser import gui_parser
from explorer.ui.settings import open_settings
from gpt_core import load_model
from gpt_core.weights.hub import cached_folder
from tests.conftest import GUI_TIMEOUT_MS, wait_idle
from tests.hf_reference import build_hf_gpt2, save_hf_folder


def put_in_cache(cache, repo_id, tmp_path):
    """A small transformers GPT-2 where huggingface_hub keeps repo_id's files."""
    source = save_hf_folder(build_hf_gpt2(), tmp_path / f"source-{repo_id.replace('/', '-')}")
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).write_bytes((source / name).read_bytes())
    return snapshot


def test_a_cached_model_is_found_and_loads_offline(hub_cache, tmp_path):
    assert cached_folder("gpt2") is None
    snapshot = put_in_cache(hub_cache, "openai-community/gpt2", tmp_path)
    assert cached_folder("gpt2") == snapshot
    model, cfg = load_model("gpt2")  # HF_HUB_OFFLINE is set for the tests
    assert cfg.emb_dim == 64 and cfg.n_layers == 3


def test_the_window_opens_on_a_cached_gpt2_small(hub_cache, tmp_path, qtbot):
    put_in_cache(hub_cache, "openai-community/gpt2", tmp_path)
    window, session = build_window(gui_parser().parse_args(["--device", "cpu"]), open_settings())
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: session.model is not None, timeout=GUI_TIMEOUT_MS)
    wait_idle(qtbot, session)
    assert session.state.model.label == "gpt2" and not session.state.model.is_random
    assert not window.weights_banner.isVisible()
    window.close()


def test_the_hub_menu_says_what_is_cached_and_loads_it(window, hub_cache, tmp_path, qtbot):
    put_in_cache(hub_cache, "distilbert/distilgpt2", tmp_path)
    menu = window.weights_menus.hub_menu
    window.weights_menus.fill_hub()
    texts = [action.text() for action in menu.actions()]
    assert texts[0] == "DistilGPT-2 (82M) — in the cache"
    assert texts[1] == "GPT-2 small (124M) — download ≈ 548 MB"
    assert window.weights_banner.get_gpt2.text() == "Download GPT-2 small (≈ 548 MB)"
    with qtbot.waitSignal(window.session.modelChanged, timeout=GUI_TIMEOUT_MS):
        menu.actions()[0].trigger()
    assert window.session.state.model.label == "distilgpt2"
    recent = window.weights_menus
    recent.fill_recent()
    assert [a.text() for a in recent.recent_menu.actions()] == ["distilgpt2"]


def test_a_download_shows_bytes_and_can_be_cancelled(window, qtbot, monkeypatch, tmp_path):
    """Not in the cache: huggingface_hub's download, faked, drives the progress bar class
    it is given; Cancel stops it between two chunks and the model in use stays."""
    import huggingface_hub

    session = window.session
    before = session.state.model
    progress, chunks = [], []

    def fake_download(repo_id, filename, tqdm_class=None, **_):
        bar = tqdm_class(total=400_000_000, desc=filename)
        for _ in range(40):
            bar.update(10_000_000)  # raises Cancelled once Cancel was pressed
            chunks.append(filename)
            if len(chunks) == 3:
                session.cancel("load")  # what the Cancel button does
        raise AssertionError("the download went on after Cancel")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    session.progress.connect(lambda fraction, message: progress.append(message))
    window.weights_menus.fill_hub()
    window.weights_menus.hub_menu.actions()[2].trigger()  # GPT-2 medium
    wait_idle(qtbot, session)
    assert len(chunks) == 3  # the next chunk was refused
    assert any("/ 400 MB" in message for message in progress)
    assert session.state.model is before
    assert "Loading cancelled" in window.message_bar.text()


@pytest.mark.parametrize("source", ["gpt2"])
def test_the_command_line_loads_a_cached_hub_name(hub_cache, tmp_path, source):
    put_in_cache(hub_cache, "openai-community/gpt2", tmp_path)
    model, cfg = load_model(source)
    assert cfg.vocab_size == 50257
