"""lens, heads and attribute write their file sets like patch and export: a file that cannot
be written (a folder in the way, a full disk) costs only itself, and the one error line
names what was written and what was not; an old file that could not be replaced is kept."""

import errno
import os
from unittest import mock

import pytest

from tests.cli_helpers import TINY, assert_one_error_line, run_cli

PROMPT = ("--prompt", "The cat sat on the")
COMMANDS = {
    "lens": (("lens", *PROMPT, "--target", " mat"), "lens_kl.npy", "lens_top1_ids.npy"),
    "heads": (("heads", "--repeat-length", "8"), "induction.png", "head_scores.npz"),
    "attribute": (
        ("attribute", *PROMPT, "--target", " mat", "--method", "grad_norm,occlusion"),
        "grad_norm.csv",
        "summary.json",
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_in_the_way_costs_only_its_file(command, tmp_path):
    args, blocked, other = COMMANDS[command]
    (tmp_path / blocked).mkdir()
    result = run_cli(*args, "--out", str(tmp_path), *TINY)
    assert_one_error_line(result, blocked, "written: ", other)
    assert (tmp_path / other).is_file()


def test_a_full_disk_keeps_the_old_summary_and_says_so(tmp_path):
    args, _, _ = COMMANDS["attribute"]
    (tmp_path / "summary.json").write_text("old")
    replace = os.replace

    def full_disk(source, target):
        if str(target).endswith("summary.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return replace(source, target)

    with mock.patch("gpt_core.util.atomic.os.replace", side_effect=full_disk):
        result = run_cli(*args, "--out", str(tmp_path), *TINY)
    assert_one_error_line(result, "summary.json: No space left on device", "written: grad_norm.npy")
    assert (tmp_path / "summary.json").read_text() == "old"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]
