import os

# Before any Qt import: tests draw offscreen, and never read or write the user's settings.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from gpt_core import GPTConfig, get_tokenizer, load_model  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer():
    return get_tokenizer()


@pytest.fixture(scope="session")
def tiny_cfg() -> GPTConfig:
    return GPTConfig.preset("tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_cfg):
    """A seeded random tiny GPT; tests must leave it as they found it (test_probe checks)."""
    model, _ = load_model(None, tiny_cfg, seed=1)
    return model


@pytest.fixture
def prompt_ids(tokenizer):
    return tokenizer.encode("Every effort moves you forward, one small step at a time.")


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_EXPLORER_SETTINGS", str(tmp_path / "settings.ini"))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="torch sees no CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
