"""The `features` command: its files (names, dtypes, shapes, and the numbers gpt_core gives),
switches, and every bad input of its own refused with one `error:` line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from gpt_core import get_tokenizer
from gpt_core.sae import FeatureSwitches, features, load_sae
from gpt_core.weights import load_model
from tests.cli_helpers import TINY, run_cli
from tests.sae_helpers import make_sae
from tests.test_cli_bad_input_property import _argv, _bad_inputs

PROMPT = "The cat sat on the mat because it was warm"


@pytest.fixture(scope="module")
def sae_folder(tmp_path_factory) -> Path:
    return make_sae(tmp_path_factory.mktemp("sae") / "sae", 32, 96, "blocks.1.hook_resid_mid")


def test_features_files(tmp_path, sae_folder):
    out = tmp_path / "out"
    result = run_cli("features", "--prompt", PROMPT, "--sae", str(sae_folder), "--out", str(out),
                     "--top", "7", "--feature", "4", "--feature", "9", *TINY)  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert names == {"top_ids.npy", "top_acts.npy", "l0.npy", "recon_error.npy", "summary.json",
                     "feature_4.json", "feature_9.json"}  # fmt: skip
    ids = get_tokenizer().encode(PROMPT)
    model, _ = load_model(None, "tiny", seed=0)
    run = features(model, ids, load_sae(sae_folder, model.cfg), top_k=7)
    expected = {"top_ids": (np.int64, run.readout.top_ids), "top_acts": (np.float32, run.readout.top_acts),
                "l0": (np.int64, run.readout.l0), "recon_error": (np.float32, run.readout.recon_error)}  # fmt: skip
    for name, (dtype, values) in expected.items():
        array = np.load(out / f"{name}.npy")
        assert array.dtype == dtype and array.shape == values.shape
        np.testing.assert_allclose(array, values, rtol=1e-6)
    assert np.load(out / "top_ids.npy").shape == (len(ids), 7)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["hook"] == "blocks.1.hook_resid_mid" and summary["d_sae"] == 96
    assert summary["architecture"] == "standard" and summary["d_in"] == 32
    assert summary["loss_clean"] == pytest.approx(run.losses.clean)
    assert summary["loss_recovered"] == pytest.approx(run.losses.recovered)
    for key in ("explained_variance", "loss_spliced", "loss_zero"):
        assert isinstance(summary[key], float)
    assert "loss_changed" not in summary
    card = json.loads((out / "feature_4.json").read_text())
    assert len(card["acts"]) == len(ids) and len(card["logits_up"]) == 10
    assert all(len(row) == 3 and isinstance(row[1], str) for row in card["logits_down"])
    np.testing.assert_allclose(card["acts"], run.readout.feature_acts(4), rtol=1e-6)


def test_switched_run_gives_loss_changed_and_top1(tmp_path, sae_folder):
    out = tmp_path / "out"
    result = run_cli("features", "--prompt", PROMPT, "--sae", str(sae_folder), "--out", str(out),
                     "--ablate-feature", "3", "--steer", "5:-2.5", "--ablate", "1.0", *TINY)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    model, _ = load_model(None, "tiny", seed=0)
    from gpt_core import Interventions

    run = features(model, get_tokenizer().encode(PROMPT), load_sae(sae_folder, model.cfg),
                   interventions=Interventions(frozenset({(1, 0)})),
                   switches=FeatureSwitches({3}, ((5, -2.5),)))  # fmt: skip
    assert summary["loss_changed"] == pytest.approx(run.losses.changed)
    assert summary["top1_ids"] == run.top1_ids.tolist()
    assert summary["switches"] == {"ablate": [3], "steer": [[5, -2.5]]}


def test_every_bad_input_of_features_is_one_error_line(tmp_path):
    from dataclasses import replace

    from gpt_core import GPTConfig, save_model
    from gpt_core.weights import random_model

    small = save_model(random_model(replace(GPTConfig.preset("tiny"), vocab_size=1000), seed=0),
                       tmp_path / "small-vocab.safetensors")  # fmt: skip
    make_sae(tmp_path / "sae", 32, 96, "blocks.1.hook_resid_pre")
    make_sae(tmp_path / "sae14", 32, 96, "blocks.14.hook_resid_pre")
    own = [edit for edit in _bad_inputs("features") if "--sae" in edit or "--top" in edit
           or "--feature" in edit or "--ablate-feature" in edit or "--steer" in edit]  # fmt: skip
    assert len(own) >= 20
    for edit in own:
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "a-file").write_text("a file")
            result = run_cli(*_argv("features", edit, Path(folder), small))
        assert result.returncode == 2, (edit, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (edit, result.stderr)
