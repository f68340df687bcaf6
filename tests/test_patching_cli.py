"""`gpt-explorer patch`: the files it writes hold what the API computes, and bad input is
one clear line."""

import json

import numpy as np
import pytest

from gpt_core import get_tokenizer, load_model
from gpt_core.analysis.patching import Metric, Receiver, default_tokens, patch
from tests.cli_helpers import run_cli
from tests.conftest import run_main

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPTED = "When Mary and John went to the store, Mary gave a drink to"


def test_patch_writes_every_sweep_and_the_summary(tmp_path):
    run_main(
        "patch", "--preset", "tiny", "--seed", "2", "--device", "cpu",
        "--clean", CLEAN, "--corrupted", CORRUPTED, "--answer", " Mary", "--position", "12",
        "--metric", "logprob", "--sweep", "resid,heads_by_pos", "--method", "both",
        "--receiver", "1.2.k", "--out", str(tmp_path),
    )  # fmt: skip
    model, _ = load_model(None, "tiny", seed=2)
    tokenizer = get_tokenizer()
    clean, corrupted = tokenizer.encode(CLEAN), tokenizer.encode(CORRUPTED)
    _, distractor = default_tokens(model, clean, corrupted, 12)
    metric = Metric("logprob", tokenizer.encode(" Mary")[0], distractor, 12)
    expected = patch(
        model, clean, corrupted, metric, ("resid", "heads_by_pos"), method="both",
        receiver=Receiver.parse("1.2.k"),
    )  # fmt: skip
    for name in ("resid", "heads_by_pos"):
        assert np.allclose(np.load(tmp_path / f"{name}.npy"), expected.exact[name], atol=1e-6)
        assert np.allclose(
            np.load(tmp_path / f"attribution_{name}.npy"), expected.attribution[name], atol=1e-6
        )
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    assert np.allclose(np.load(tmp_path / "path.npy"), expected.path, equal_nan=True, atol=1e-6)
    rows = (tmp_path / "heads_by_pos.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("head \\ position,0:When")
    assert rows[1].startswith("L0H0,") and len(rows) == 1 + 2 * 4  # 2 blocks x 4 heads
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["clean_ids"] == clean and summary["corrupted_ids"] == corrupted
    assert summary["answer_id"] == metric.answer and summary["distractor_id"] == distractor
    assert summary["metric"] == "logprob" and summary["position"] == 12
    assert summary["clean_metric"] == pytest.approx(expected.clean_value, abs=1e-6)
    assert summary["corrupted_metric"] == pytest.approx(expected.corrupted_value, abs=1e-6)
    assert summary["receiver"] == "1.2.k"
    dla = summary["direct_logit_attribution"]
    assert set(dla) >= {"embeddings", "L0H0", "L1 mlp", "final norm shift"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clean", "a b c", "--corrupted", "a b c d"], "clean has 3 tokens, corrupted 4"),
        (["--clean", CLEAN, "--corrupted", CORRUPTED, "--answer", " Mary Ann"], "exactly one"),
        (["--clean", CLEAN, "--corrupted", CORRUPTED, "--sweep", "everything"], "unknown sweep"),
        (["--clean", CLEAN, "--corrupted", CORRUPTED, "--position", "40"], "outside the prompt"),
        (["--clean", CLEAN, "--corrupted", CORRUPTED, "--receiver", "5.0.q"], "does not exist"),
        (["--clean", "", "--corrupted", ""], "empty"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, args, message):
    result = run_cli("patch", "--preset", "tiny", "--out", str(tmp_path), *args)  # in-process
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not any(tmp_path.iterdir())


def test_attribution_images_are_normalised_as_metric_values(tmp_path):
    """attribution_*.npy holds the change of the metric; its image shows the estimated
    metric normalised like the exact maps: the same 0 = corrupted, 1 = clean."""
    from explorer.export.patching import export_patching
    from explorer.export.render import painting_application

    painting_application()
    model, _ = load_model(None, "tiny", seed=2)
    tokenizer = get_tokenizer()
    clean, corrupted = tokenizer.encode(CLEAN), tokenizer.encode(CORRUPTED)
    answer, distractor = default_tokens(model, clean, corrupted, 13)
    result = patch(model, clean, corrupted, Metric("logit_diff", answer, distractor, 13),
                   ("resid",), method="attribution")  # fmt: skip
    captured = {}
    import explorer.export.patching as patch_export

    real_save = patch_export.save_figure
    patch_export.save_figure = lambda path, figures: captured.setdefault(path.name, figures[0])
    try:
        export_patching(result, tmp_path, ("npy", "png"))
    finally:
        patch_export.save_figure = real_save
    shown = captured["attribution_resid.png"].matrix
    assert np.allclose(shown, result.normalised(result.estimate("resid")), atol=1e-6)
    assert np.allclose(np.load(tmp_path / "attribution_resid.npy"), result.attribution["resid"])
