"""What the command line says when something is wrong: one `error: …` line on stderr and
status 2 for bad arguments of every subcommand, nothing created before everything is
checked; --prompt-file, trace --target and trace --out FOLDER; and the one rule for a
prompt with no text, shared by the command line, the API and the window."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from explorer.commands.parser import COMMANDS, SUBCOMMANDS
from gpt_core import PromptError, Trace, backward_step, capture, get_tokenizer, load_model
from gpt_core.model.tokenizer import EMPTY_PROMPT
from tests.cli_helpers import TINY, assert_one_error_line, run_cli
from tests.conftest import ROOT
from tests.test_window import _run_typed

pytestmark = pytest.mark.usefixtures("qapp")  # the image writers paint text


# ---- argparse's usage blocks become one line, for every subcommand ----

REQUIRED = {
    "export": ["--prompt", "x", "--out", "o"],
    "trace": ["--prompt", "x", "--out", "t.npz"],
    "patch": ["--clean", "a b", "--corrupted", "a c", "--out", "o"],
    "heads": ["--out", "o"],
    "sublayer-lens": ["--prompt", "x", "--out", "o"],
    "lens": ["--prompt", "x", "--out", "o"],  # the older name of sublayer-lens
    "attribute": ["--prompt", "x", "--target", " y", "--out", "o"],
    "attention": ["--prompt", "x", "--layer", "0", "--head", "0", "--out", "o"],
    "sample": ["--prompt", "x", "--out", "o"],
    "features": ["--prompt", "x", "--sae", "s", "--out", "o"],
    "features-scan": ["--sae", "s", "--corpus", "c", "--out", "o"],
    "tokenize": ["--text", "x"],
}


def test_every_subcommand_is_listed():
    assert set(REQUIRED) == set(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_bad_arguments_are_one_error_line_for_every_subcommand(command, tmp_path):
    assert_one_error_line(
        run_cli(command, *REQUIRED[command], "--no-such-option", cwd=tmp_path),
        "unrecognized arguments: --no-such-option",
        "(see `gpt-explorer",
    )
    named = "sublayer-lens" if command == "lens" else command  # an alias's help is its command's
    assert_one_error_line(
        run_cli(command, cwd=tmp_path), "required", f"(see `gpt-explorer {named} --help`)"
    )
    takes_a_model = command not in {c.name for c in COMMANDS if not c.model}
    assert_one_error_line(
        run_cli(command, *REQUIRED[command], "--device", "tpu", cwd=tmp_path),
        "argument --device: invalid choice: 'tpu'"
        if takes_a_model
        else "unrecognized arguments: --device tpu",
    )
    assert list(tmp_path.iterdir()) == []


def test_the_window_options_are_one_error_line_too():
    assert_one_error_line(run_cli("--preset", "gpt5"), "argument --preset: invalid choice")


def test_help_still_prints_usage():
    result = run_cli("trace", "--help")
    assert (
        result.returncode == 0 and "--prompt-file" in result.stdout and "--target" in result.stdout
    )


# ---- raw messages made plain ----


def test_a_seed_too_large_for_torch_is_refused_plainly(tmp_path):
    result = run_cli("trace", "--prompt", "hi", "--out", str(tmp_path), "--seed", "2**70", *TINY)
    assert_one_error_line(result, "argument --seed", "0 to 2**64 - 1", "'2**70'")
    result = run_cli("export", "--prompt", "hi", "--out", "o", "--seed", str(2**70), *TINY)
    assert_one_error_line(result, "argument --seed")
    result = run_cli("trace", "--prompt", "hi", "--out", str(tmp_path), "--seed", str(2**64), *TINY)
    assert_one_error_line(result, "argument --seed")  # one past the largest
    result = run_cli("heads", "--out", "o", "--sequence-seed", "-1", *TINY)
    assert_one_error_line(result, "argument --sequence-seed")


def test_an_ablation_with_a_superscript_digit_is_refused_plainly(tmp_path):
    result = run_cli("trace", "--prompt", "hi", "--out", str(tmp_path), "--ablate", "².1", *TINY)
    assert_one_error_line(result, "--ablate takes LAYER.HEAD items such as 0.3, got '².1'")
    result = run_cli("trace", "--prompt", "hi", "--out", str(tmp_path), "--skip", "¹", *TINY)
    assert_one_error_line(result, "--skip takes block numbers")
    assert list(tmp_path.iterdir()) == []


# ---- trace --out: a .npz file, or a folder the trace goes into ----


def test_trace_out_dot_writes_trace_npz_in_the_folder(tmp_path):
    result = run_cli("trace", "--prompt", "hi there", "--out", ".", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["trace.npz"]
    assert Trace.load(tmp_path / "trace.npz").n_tokens == 2
    folder = tmp_path / "runs"
    folder.mkdir()
    assert run_cli("trace", "--prompt", "hi", "--out", str(folder), *TINY).returncode == 0
    assert [p.name for p in folder.iterdir()] == ["trace.npz"]
    assert not (tmp_path / "runs.npz").exists()


def test_trace_out_that_is_neither_npz_nor_a_folder_is_refused(tmp_path):
    result = run_cli("trace", "--prompt", "hi", "--out", str(tmp_path / "run.txt"), *TINY)
    assert_one_error_line(result, "ending in .npz, or an existing folder")
    assert list(tmp_path.iterdir()) == []


# ---- export checks everything before it creates anything ----


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--layer", "99"], "layer 99 does not exist"),
        (["--head", "9"], "head 9 does not exist"),
        (["--format", "gif"], "unknown format gif"),
        (["--ablate", "7.0"], "does not exist"),
    ],
)
def test_export_refuses_before_creating_the_folder(tmp_path, option, message):
    out = tmp_path / "new" / "folder"
    assert_one_error_line(
        run_cli("export", "--prompt", "hi", "--out", str(out), *option, *TINY), message
    )
    assert not (tmp_path / "new").exists()


# ---- trace --backward --target ----


def test_backward_on_one_token_asks_for_the_target_option(tmp_path):
    out = tmp_path / "t.npz"
    result = run_cli("trace", "--prompt", "Hello", "--out", str(out), "--backward", *TINY)
    assert_one_error_line(result, "--target TOKEN")
    assert not out.exists()


def test_backward_with_a_target_token_matches_the_api(tmp_path):
    out = tmp_path / "t.npz"
    result = run_cli(
        "trace", "--prompt", "Hello", "--out", str(out), "--backward", "--target", " world", *TINY
    )
    assert result.returncode == 0, result.stderr
    tokenizer = get_tokenizer()
    [hello], world = tokenizer.encode("Hello"), tokenizer.single_id(" world")
    saved = Trace.load(out)
    assert saved.backward.target == (0, world)
    model, _ = load_model(None, "tiny", seed=0)
    expected = backward_step(model, [hello], target=(0, world))
    assert saved.backward.loss == pytest.approx(expected.backward.loss, rel=1e-6)
    assert np.array_equal(saved.grad("embeddings/token"), expected.grad("embeddings/token"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backward", "--target", " two words"], "is 2 tokens; the target must be exactly one"),
        (["--target", " world"], "--target names the loss of the backward step: add --backward"),
    ],
)
def test_a_bad_target_is_refused(tmp_path, extra, message):
    result = run_cli("trace", "--prompt", "Hello", "--out", str(tmp_path), *extra, *TINY)
    assert_one_error_line(result, message)
    assert list(tmp_path.iterdir()) == []


# ---- --prompt-file ----


@pytest.mark.parametrize("command", ["export", "trace", "lens", "attribute"])
def test_prompt_file_is_the_same_as_prompt(tmp_path, command):
    extra = {"export": ["--format", "npy"], "attribute": ["--target", " the", "--method",
             "grad_norm"]}.get(command, [])  # fmt: skip
    prompt = "A long prompt,\nover two lines"
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(prompt + "\n", encoding="utf-8")  # the final newline is dropped
    outputs = {}
    for how in ("text", "file", "stdin"):
        out = tmp_path / how
        out.mkdir()
        source = {"text": ["--prompt", prompt], "file": ["--prompt-file", str(prompt_file)],
                  "stdin": ["--prompt-file", "-"]}[how]  # fmt: skip
        stdin = prompt + "\n" if how == "stdin" else None
        result = run_cli(command, *source, "--out", str(out), *extra, *TINY, stdin=stdin)
        assert result.returncode == 0, result.stderr
        if command == "trace":  # the file also holds the run's wall time
            outputs[how] = Trace.load(out / "trace.npz").token_ids.tolist()
        else:
            outputs[how] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert outputs["text"] and outputs["file"] == outputs["text"] == outputs["stdin"]


def test_prompt_and_prompt_file_exclude_each_other(tmp_path):
    result = run_cli("lens", "--prompt", "a", "--prompt-file", "p.txt", "--out", "o", *TINY)
    assert_one_error_line(result, "not allowed with argument")


def test_a_missing_prompt_file_is_one_line(tmp_path):
    missing = tmp_path / "missing.txt"
    result = run_cli("export", "--prompt-file", str(missing), "--out", str(tmp_path / "o"), *TINY)
    assert_one_error_line(result, f"cannot read the prompt file {missing}: No such file")
    assert list(tmp_path.iterdir()) == []


# ---- one rule for a prompt with no text: command line, API, window ----


@pytest.mark.parametrize(
    "args",
    [
        ["trace", "--prompt", " \n\t ", "--out", "t.npz"],
        ["export", "--prompt", "   ", "--out", "o"],
        ["lens", "--prompt", "\n\n", "--out", "o"],
        ["attribute", "--prompt", "  ", "--target", " a", "--out", "o"],
        ["patch", "--clean", "  ", "--corrupted", "  ", "--out", "o"],
        ["trace", "--prompt", "", "--out", "t.npz"],
    ],
)
def test_cli_refuses_a_whitespace_prompt(tmp_path, args):
    assert_one_error_line(run_cli(*args, *TINY, cwd=tmp_path), EMPTY_PROMPT)
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_a_whitespace_prompt_from_a_real_stdin(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "lens", "--prompt-file", "-", "--out", "o", *TINY],
        cwd=tmp_path, input=" \n", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert_one_error_line(result, EMPTY_PROMPT)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", ["   ", "\n", " \t\n ", "\u3000"])
def test_api_refuses_a_whitespace_prompt(tiny_model, tokenizer, text):
    ids = tokenizer.encode(text)
    assert ids
    with pytest.raises(PromptError, match=EMPTY_PROMPT):
        capture(tiny_model, ids)
    with pytest.raises(PromptError, match=EMPTY_PROMPT):
        backward_step(tiny_model, ids, target=(len(ids) - 1, 11))
    assert capture(tiny_model, tokenizer.encode(text + "a")).n_tokens >= 2


def test_window_refuses_a_whitespace_prompt_with_the_same_message(window, qtbot):
    window.prompt.set_text(" \n\t ")
    window.actions_by_name["run"].trigger()
    assert window.message_bar.text() == EMPTY_PROMPT[0].upper() + EMPTY_PROMPT[1:] + "."
    assert window.session.trace is None
    _run_typed(qtbot, window, " x ")
    assert window.session.trace is not None


@pytest.mark.parametrize(
    ("content", "prompt"),
    [("a b\n", "a b"), ("a b\r\n", "a b"), ("a b\n\n", "a b\n"), ("a b\n\r\n", "a b\n"),
     ("a b", "a b")],
)  # fmt: skip
def test_prompt_file_drops_one_final_newline_only(tmp_path, content, prompt):
    from explorer.commands.options import prompt_text

    path = tmp_path / "p.txt"
    path.write_bytes(content.encode())
    assert prompt_text(SimpleNamespace(prompt=None, prompt_file=path)) == prompt
