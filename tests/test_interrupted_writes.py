"""SIGTERM or Ctrl-C in the middle of a write: the temporary file is removed, the old file
kept, and one line says what was written; exit status 143 or 130, no traceback."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.cli_helpers import TINY, run_cli
from tests.conftest import ROOT

# The first .npy write puts half its bytes down, then the signal arrives mid-write.
INTERRUPTING_SAVE = """
import os, signal, sys, time
import numpy as np
calls = []
def save(f, array, allow_pickle=False):
    calls.append(1)
    f.write(b"half a file")
    if len(calls) == {nth}:
        os.kill(os.getpid(), signal.{signal})
        time.sleep(5)  # the handler runs before this returns
np.save = save
from explorer.app import main
sys.exit(main(sys.argv[1:]))
"""
LENS = ("lens", "--prompt", "The cat sat", *TINY)


def _run_interrupted(tmp_path, nth: int, signal_name: str) -> subprocess.CompletedProcess:
    code = INTERRUPTING_SAVE.format(nth=nth, signal=signal_name)
    return subprocess.run([sys.executable, "-c", code, *LENS, "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _old_files_kept(folder) -> None:
    assert (folder / "lens_top1_ids.npy").read_bytes() == b"old"
    assert not [name for name in os.listdir(folder) if name.endswith(".part")]


def test_sigterm_mid_write_keeps_the_old_file(tmp_path):
    (tmp_path / "lens_top1_ids.npy").write_bytes(b"old")
    result = _run_interrupted(tmp_path, 1, "SIGTERM")
    assert result.returncode == 143, result.stderr
    assert result.stderr == "interrupted; nothing written\n"
    _old_files_kept(tmp_path)


def test_ctrl_c_mid_write_names_what_was_written(tmp_path, monkeypatch):
    (tmp_path / "lens_top1_ids.npy").write_bytes(b"old")
    (tmp_path / "lens_kl.npy").write_bytes(b"old")
    save, calls = np.save, []

    def interrupting_save(f, array, allow_pickle=False):
        calls.append(1)
        if len(calls) == 4:  # lens_kl.npy, after three whole files
            f.write(b"half a file")
            raise KeyboardInterrupt
        save(f, array, allow_pickle=allow_pickle)

    monkeypatch.setattr(np, "save", interrupting_save)
    result = run_cli(*LENS, "--target", " mat", "--out", str(tmp_path))
    assert result.returncode == 130
    assert result.stderr == (
        "interrupted; written: lens_top1_ids.npy, lens_top1_probs.npy, lens_entropy.npy\n"
    )
    assert (tmp_path / "lens_kl.npy").read_bytes() == b"old"
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".part")]


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="no SIGTERM here")
def test_sigterm_in_process_is_the_same_line(tmp_path, monkeypatch):
    save = np.save

    def terminating_save(f, array, allow_pickle=False):
        f.write(b"half a file")
        os.kill(os.getpid(), signal.SIGTERM)
        save(f, array, allow_pickle=allow_pickle)

    monkeypatch.setattr(np, "save", terminating_save)
    result = run_cli(*LENS, "--out", str(tmp_path))
    assert (result.returncode, result.stderr) == (143, "interrupted; nothing written\n")
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back as it was
