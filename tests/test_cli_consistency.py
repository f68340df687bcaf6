"""Options the window refuses or reads one way are refused or read the same way by the
command line: one `error:` line, status 2, nothing written."""

import json
import tempfile
from unittest import mock

import pytest

from gpt_core import get_tokenizer
from gpt_core.analysis.patching import Metric
from tests.cli_helpers import TINY, assert_one_error_line, run_cli

CLEAN = ("--clean", "When Mary and John went, John gave it to")
CORRUPTED = ("--corrupted", "When Mary and John went, Mary gave it to")


def _patch(out, *extra):
    return run_cli("patch", *CLEAN, *CORRUPTED, "--sweep", "resid", "--out", str(out), *TINY,
                   *extra)  # fmt: skip


def _attribute(out, *extra):
    return run_cli("attribute", "--prompt", "The cat sat on the", "--out", str(out), *TINY,
                   *extra)  # fmt: skip


@pytest.mark.parametrize(
    ("run", "extra", "message"),
    [
        (_attribute, ("--target", " mat", "--foil", " mat"), "the foil is the target"),
        (_attribute, ("--target", " mat", "--method", ""), "no method chosen"),
        (_attribute, ("--target", ""), "--target: is empty"),
        (_attribute, ("--target", " mat", "--foil", ""), "--foil: is empty"),
        (_attribute, ("--target", " mat", "--baseline", ""), "--baseline: is empty"),
        (_patch, ("--answer", " Mary", "--distractor", " Mary"), "the distractor is the answer"),
        (_patch, ("--answer", " Mary", "--distractor", "␣Mary"), "the distractor is the answer"),
        (_patch, ("--sweep", ""), "no sweep chosen"),
        (_patch, ("--receiver", ""), "--receiver: is empty"),
        (_patch, ("--answer", ""), "--answer: is empty"),
        (_patch, ("--receiver", "-1.0.q"), "'-1.0.q'"),
    ],
)
def test_option_the_window_refuses_is_refused(run, extra, message, tmp_path):
    out = tmp_path / "out"
    assert_one_error_line(run(out, *extra), message)
    assert not out.exists()


@pytest.mark.parametrize("command", ["lens", "trace"])
def test_an_empty_target_is_refused_not_ignored(command, tmp_path):
    out = tmp_path / ("t.npz" if command == "trace" else "out")
    extra = ("--backward",) if command == "trace" else ()
    result = run_cli(command, "--prompt", "a b", "--target", "", "--out", str(out), *TINY, *extra)
    assert_one_error_line(result, "--target: is empty")
    assert not out.exists()


@pytest.mark.parametrize("length", ["10000", "32", "1"])
def test_heads_refuses_a_repeat_length_that_does_not_fit(length, tmp_path):
    # tiny's context is 64 tokens: two copies of 31 and a start token fit, 32 do not
    out = tmp_path / "out"
    result = run_cli("heads", "--repeat-length", length, "--out", str(out), *TINY)
    assert_one_error_line(result, "does not fit", "2 to 31")
    assert not out.exists()


def test_patch_reads_the_answer_in_its_display_form(tmp_path):
    result = _patch(tmp_path, "--answer", "␣Mary", "--distractor", "␣John")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    tok = get_tokenizer()
    assert (summary["answer_id"], summary["distractor_id"]) == tuple(tok.encode(" Mary John"))


def test_a_folder_that_refuses_every_file_says_so_once(tmp_path):
    denied = PermissionError(13, "Permission denied")
    with mock.patch.object(tempfile, "mkstemp", side_effect=denied):
        result = _patch(tmp_path)
    assert_one_error_line(result, "Permission denied", "nothing written")
    assert result.stderr.count("Permission denied") == 1


def test_metric_refuses_the_answer_as_its_own_distractor():
    with pytest.raises(ValueError, match="the distractor is the answer"):
        Metric("logit_diff", 5, 5, 0)
    Metric("prob", 5, 5, 0)  # a probability reads the answer alone


@pytest.mark.parametrize("steps", ["100000000000", "10000000", "1025", "0", "-3"])
def test_attribute_refuses_steps_it_cannot_run_before_loading(steps, tmp_path):
    out = tmp_path / "out"
    with mock.patch("explorer.commands.parser.load_model") as load:
        result = _attribute(out, "--target", " mat", "--steps", steps)
    assert_one_error_line(result, "integrated gradients takes 1 to 1,024 steps")
    assert not load.called and not out.exists()


def test_the_api_refuses_steps_past_the_maximum(tiny_model):
    from gpt_core.analysis.input_attribution import Explained, attribute

    with pytest.raises(ValueError, match="1 to 1,024 steps"):
        attribute(tiny_model, [464, 3797], Explained(5, None, 1), steps=1025)
