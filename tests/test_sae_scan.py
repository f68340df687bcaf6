"""The corpus scan against a brute-force scan written here (one plain forward per window, the
activation read by a hook of the test's own, the SAE in float64 from the formulas), and its
stop at the site, cancel, resume and cache; the features-scan command's files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gpt_core import get_tokenizer, load_model
from gpt_core.errors import Cancelled
from gpt_core.sae import load_sae, scan_corpus
from gpt_core.sae import scan as scan_module
from tests.cli_helpers import TINY, run_cli
from tests.sae_helpers import numpy_encode_decode, random_weights, sae_config, write_sae

WINDOW, TOP = 8, 5
TEXTS = {
    "a.txt": "The cat sat on the mat. The dog sat on the log. A bird sang in the tree all day long, "
    "and the children listened while the sun went down over the quiet hills.",
    "b.txt": "Numbers 1 2 3 4 5 6 7 8 9 10 11 12 and letters a b c d e f g h i j k l m n o p, "
    "then the end of the second file",
}


@pytest.fixture(scope="module")
def model():
    return load_model(None, "tiny", seed=0)[0].eval()


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in TEXTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def sae_parts(tmp_path):
    cfg = sae_config(32, 96, "blocks.1.hook_resid_pre")
    tensors = random_weights(32, 96, seed=21)
    return write_sae(tmp_path / "sae", cfg, tensors), cfg, tensors


def _brute_force(model, cfg, tensors):
    """Every window's activations by one plain forward each, and each feature's top."""
    tok = get_tokenizer()
    windows = []
    for name in sorted(TEXTS):
        ids = tok.encode(TEXTS[name])
        windows += [ids[i : i + WINDOW] for i in range(0, len(ids) - WINDOW + 1, WINDOW)]
    acts = []
    for window in windows:
        seen = {}

        def keep(module, args, seen=seen) -> None:
            seen["x"] = args[0]

        handle = model.trf_blocks[1].register_forward_pre_hook(keep)
        try:
            with torch.no_grad():
                model(torch.tensor([window]))
        finally:
            handle.remove()
        acts.append(numpy_encode_decode(seen["x"][0].double().numpy(), tensors, cfg)[0])
    return np.array(windows), np.concatenate(acts)  # [W, N], [W·N, d_sae]


def test_the_scan_keeps_each_features_top_windows(model, corpus, sae_parts, monkeypatch):
    monkeypatch.setattr(scan_module, "BATCH_TOKENS", 2 * WINDOW)  # many merges
    folder, cfg, tensors = sae_parts
    sae = load_sae(folder, model.cfg)
    result = scan_corpus(model, sae, corpus, window=WINDOW, top_k=TOP)
    windows, acts = _brute_force(model, cfg, tensors)
    np.testing.assert_array_equal(result.windows, windows)
    assert result.top_acts.shape == (96, TOP) and result.top_where.shape == (96, TOP, 2)
    order = np.argsort(-acts, axis=0, kind="stable")[:TOP].T  # [d_sae, TOP] flat tokens
    expected = np.take_along_axis(acts.T, order, 1)
    expected = np.where(expected > 0, expected, 0)
    np.testing.assert_allclose(result.top_acts, expected, atol=1e-5)
    shown = expected > 0
    assert shown.sum() > 96 and (~shown).any()  # features with fewer than TOP hits too
    flat = result.top_where[..., 0] * WINDOW + result.top_where[..., 1]
    np.testing.assert_array_equal(flat[shown], order[shown])
    assert (result.top_where[~shown] == -1).all()
    assert result.tokens == windows.size


def test_the_runs_stop_at_the_site(model, corpus, sae_parts):
    folder, _, _ = sae_parts
    calls = []
    handle = model.trf_blocks[1].register_forward_pre_hook(lambda m, a: calls.append(1) and None)
    try:
        scan_corpus(model, load_sae(folder, model.cfg), corpus, window=WINDOW, top_k=TOP)
    finally:
        handle.remove()
    assert calls == []  # block 1 never ran: the SAE reads its input


def test_cancel_resume_and_cache(tmp_path, model, corpus, sae_parts, monkeypatch):
    monkeypatch.setattr(scan_module, "BATCH_TOKENS", 2 * WINDOW)
    folder, _, _ = sae_parts
    sae = load_sae(folder, model.cfg)
    whole = scan_corpus(model, sae, corpus, window=WINDOW, top_k=TOP)
    cache, reports = tmp_path / "cache", []
    polls = iter([False, False, True])
    with pytest.raises(Cancelled):
        scan_corpus(model, sae, corpus, window=WINDOW, top_k=TOP, cache_dir=cache,
                    should_stop=lambda: next(polls))  # fmt: skip
    assert len(list(cache.glob("*.npz"))) == 1
    resumed = scan_corpus(model, sae, corpus, window=WINDOW, top_k=TOP, cache_dir=cache,
                          progress=lambda done, total, rate: reports.append(done))  # fmt: skip
    assert reports[0] == 3 * 2 * WINDOW  # two batches were done before the cancel
    assert reports[-1] == whole.tokens and not resumed.from_cache
    np.testing.assert_array_equal(resumed.top_acts, whole.top_acts)
    np.testing.assert_array_equal(resumed.top_where, whole.top_where)
    again = scan_corpus(model, sae, corpus, window=WINDOW, top_k=TOP, cache_dir=cache)
    assert again.from_cache
    np.testing.assert_array_equal(again.top_where, whole.top_where)
    (corpus / "a.txt").write_text(TEXTS["a.txt"] + " more words", encoding="utf-8")
    changed = scan_corpus(model, sae, corpus, window=WINDOW, top_k=TOP, cache_dir=cache)
    assert not changed.from_cache  # another corpus is another key


def test_features_scan_command(tmp_path, corpus, sae_parts):
    folder, _, _ = sae_parts
    out = tmp_path / "out"
    result = run_cli("features-scan", "--sae", str(folder), "--corpus", str(corpus), "--out", str(out),
                     "--window", str(WINDOW), "--top", "4", "--cache", str(tmp_path / "c"), *TINY)  # fmt: skip
    assert result.returncode == 0, result.stderr
    top_acts, top_where = np.load(out / "top_acts.npy"), np.load(out / "top_where.npy")
    windows = np.load(out / "windows.npy")
    assert top_acts.dtype == np.float32 and top_acts.shape == (96, 4)
    assert top_where.dtype == np.int64 and top_where.shape == (96, 4, 2)
    assert windows.dtype == np.int64 and windows.shape[1] == WINDOW
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tokens_scanned"] == windows.size and summary["tokens_per_second"] > 0
    for bad in (["--window", "1"], ["--window", "x"], ["--top", "0"], ["--corpus", str(tmp_path / "none")],
                ["--corpus", str(folder)], ["--window", "1000"]):  # fmt: skip
        args = {"--sae": str(folder), "--corpus": str(corpus), "--out": str(out), "--window": "8"}
        args.update(dict(zip(bad[::2], bad[1::2], strict=True)))
        result = run_cli("features-scan", *[x for kv in args.items() for x in kv], *TINY)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, (bad, result.stderr)
        assert result.stderr.startswith("error: ")
