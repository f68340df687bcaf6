"""The headless commands, run as a person runs them: in a subprocess."""

import numpy as np
import pytest

from gpt_core import Interventions, Trace, capture, get_tokenizer, load_model
from tests.cli_helpers import run_cli
from tests.conftest import run_main


def test_export_one_head_every_format(tmp_path):
    out = tmp_path / "out"
    result = run_main(
        "export",
        "--prompt",
        "Hello, world. Hello again!",
        "--out",
        str(out),
        "--layer",
        "1",
        "--head",
        "2",
        "--preset",
        "tiny",
        "--seed",
        "1",
    )
    assert "wrote 4 files" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "attention_L1_H2.csv",
        "attention_L1_H2.npy",
        "attention_L1_H2.png",
        "attention_L1_H2.svg",
    ]
    model, _ = load_model(None, "tiny", seed=1)
    trace = capture(model, get_tokenizer().encode("Hello, world. Hello again!"))
    assert np.array_equal(np.load(out / "attention_L1_H2.npy"), trace.head_weights(1, 2))
    assert (out / "attention_L1_H2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "0:Hello" in (out / "attention_L1_H2.svg").read_text(encoding="utf-8")


def test_export_every_layer_and_head_when_none_is_given(tmp_path):
    run_main(
        "export", "--prompt", "abc", "--out", str(tmp_path), "--format", "npy", "--preset", "tiny"
    )
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {f"attention_L{l}_H{h}.npy" for l in range(2) for h in range(4)}


def test_export_with_ablation_matches_gpt_core(tmp_path):
    run_main(
        "export",
        "--prompt",
        "The cat sat on the mat",
        "--out",
        str(tmp_path),
        "--format",
        "npy",
        "--layer",
        "1",
        "--head",
        "0",
        "--ablate",
        "0.1,0.3",
        "--skip",
        "",
        "--ablation-mode",
        "mean",
        "--preset",
        "tiny",
        "--seed",
        "1",
    )
    model, _ = load_model(None, "tiny", seed=1)
    ids = get_tokenizer().encode("The cat sat on the mat")
    expected = capture(model, ids, Interventions({(0, 1), (0, 3)}, mode="mean"))
    plain = capture(model, ids)
    got = np.load(tmp_path / "attention_L1_H0.npy")
    assert np.array_equal(got, expected.head_weights(1, 0))
    assert not np.array_equal(got, plain.head_weights(1, 0))


def test_trace_with_backward(tmp_path):
    out = tmp_path / "run.npz"
    result = run_main(
        "trace",
        "--prompt",
        "Every effort moves you",
        "--out",
        str(out),
        "--backward",
        "--skip",
        "1",
        "--preset",
        "tiny",
    )
    assert "wrote" in result.stdout
    trace = Trace.load(out)
    assert trace.token_ids.tolist() == [6109, 3626, 6100, 345]
    assert trace.backward is not None and trace.grad("embeddings/token") is not None
    assert trace.interventions == Interventions(skip_layers={1})
    with np.load(out) as raw:
        assert "grad/blocks/0/attn/weights" in raw.files and "logits/topk_probs" in raw.files


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trace", "--prompt", "", "--out", "{tmp}/t.npz", "--preset", "tiny"], "empty"),
        (
            ["trace", "--prompt", "x " * 100, "--out", "{tmp}/t.npz", "--preset", "tiny"],
            "this model sees at most 64",
        ),
        (
            ["trace", "--prompt", "hi", "--out", "{tmp}/t.npz", "--weights", "{tmp}/missing.pth"],
            "no such file",
        ),
        (
            ["trace", "--prompt", "hi", "--out", "{tmp}/no/dir/t.npz", "--preset", "tiny"],
            "does not exist",
        ),
        (
            ["export", "--prompt", "hi", "--out", "{tmp}/o", "--layer", "5", "--preset", "tiny"],
            "layer 5 does not exist",
        ),
        (
            ["export", "--prompt", "hi", "--out", "{tmp}/o", "--format", "gif", "--preset", "tiny"],
            "unknown format gif",
        ),
        (
            ["export", "--prompt", "hi", "--out", "{tmp}/o", "--ablate", "9.9", "--preset", "tiny"],
            "head 9.9 does not exist",
        ),
        (
            ["export", "--prompt", "hi", "--out", "{tmp}/o", "--ablate", "x", "--preset", "tiny"],
            "LAYER.HEAD",
        ),
        (
            [
                "trace",
                "--prompt",
                "hi",
                "--out",
                "{tmp}/t.npz",
                "--device",
                "cuda",
                "--preset",
                "tiny",
            ],
            "CUDA",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_code_2(tmp_path, args, message):
    if "cuda" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    result = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])  # in-process
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_too_long_prompt_can_be_cropped(tmp_path):
    out = tmp_path / "t.npz"
    run_main("trace", "--prompt", "x " * 100, "--out", str(out), "--crop", "--preset", "tiny")
    assert Trace.load(out).n_tokens == 64


def test_help_lists_the_options():
    result = run_main("--help")
    for option in ("--prompt", "--weights", "--preset", "--device", "--seed"):
        assert option in result.stdout
    result = run_main("export", "--help")
    for option in (
        "--out",
        "--layer",
        "--head",
        "--format",
        "--ablate",
        "--skip",
        "--ablation-mode",
    ):
        assert option in result.stdout
