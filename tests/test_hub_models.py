"""Real GPT-2 first: models in the Hugging Face cache load offline at once (found by
huggingface_hub's own cache lookup), the others download with progress in bytes and a
Cancel that stops the transfer, the window opens on a cached GPT-2 small, and File ▸
Recent remembers what was loaded; with no network and an empty cache, one line says what
to download, at once. The network is never touched: the cache is built in the layout
huggingface_hub writes, downloads go through a fake hf_hub_download, and an unreachable hub
is a client that refuses every request."""

import logging
import time

import pytest

from explorer.app import build_window
from explorer.commands.parser import gui_parser
from explorer.ui.settings import open_settings
from gpt_core import load_model
from gpt_core.weights.hub import cached_folder
from tests.cli_helpers import assert_one_error_line, run_cli
from tests.conftest import GUI_TIMEOUT_MS, wait_idle
from tests.hf_reference import build_hf_gpt2, save_hf_folder


@pytest.fixture
def no_network(monkeypatch, hub_cache):
    """HF_HUB_OFFLINE unset, an empty cache, and every request huggingface_hub sends refused
    the way a machine without a network refuses it; the requests for the model's files are
    counted (huggingface_hub also asks, once a process, for its list of agent harnesses)."""
    import httpx2
    import huggingface_hub.constants

    requests = []

    def refuse(client, request, **_):
        if "/resolve/" in request.url.path:
            requests.append(f"{request.method} {request.url}")
        raise httpx2.ConnectError("[Errno -2] Name or service not known", request=request)

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(httpx2.Client, "send", refuse)
    return requests


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
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda *a, **k: None)
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


WHAT_TO_DOWNLOAD = "hf download openai-community/gpt2-medium (≈ 1,520 MB)"


def test_no_network_is_one_line_at_once_saying_what_to_download(no_network, tmp_path, caplog):
    out = tmp_path / "t.npz"
    start = time.perf_counter()
    result = run_cli("trace", "--weights", "gpt2-medium", "--prompt", "x", "--out", str(out))
    assert time.perf_counter() - start < 5
    assert_one_error_line(result, "not in the Hugging Face cache", WHAT_TO_DOWNLOAD)
    assert "Name or service not known" in result.stderr
    assert len(no_network) == 1  # one look at the hub, no retries
    assert not [r.message for r in caplog.records if r.levelno >= logging.WARNING]
    assert not out.exists()


def test_no_network_in_the_window_is_one_message_at_once(window, no_network, qtbot):
    session = window.session
    before = session.state.model
    window.weights_menus.fill_hub()
    start = time.perf_counter()
    window.weights_menus.hub_menu.actions()[2].trigger()  # GPT-2 medium
    wait_idle(qtbot, session)
    assert time.perf_counter() - start < 5
    text = window.message_bar.text()
    assert text.startswith("Could not load gpt2-medium") and WHAT_TO_DOWNLOAD in text
    assert "previous model stays loaded" in text
    assert len(no_network) == 1
    assert session.state.model is before
