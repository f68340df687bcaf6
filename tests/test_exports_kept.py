"""Nothing exported is ever lost: a failed write (a full disk, simulated with a file-size
limit, which fails every write past it as the disk would) keeps the old file and says so;
SVG holds any prompt; a partial export names what was written; the dialog offers to create
a missing folder and keeps the typed one; files get the mode an ordinary write gives."""

import contextlib
import os
import resource
import signal
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from explorer.export.attention import export_head
from explorer.ui.dialogs.export import ExportDialog, ExportRequest
from gpt_core import ExportError, capture, get_tokenizer, load_model, save_model
from gpt_core.util.files import PartialExport, write_matrix_csv, write_npy
from tests.conftest import ROOT
from tests.test_window import _run_typed

SIZE_LIMIT = 4096  # bytes: every SVG and PNG here is larger


@contextlib.contextmanager
def file_size_limit(n_bytes: int):
    """Writes past n_bytes fail with EFBIG, in C and Python alike, as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def _limited_child():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (SIZE_LIMIT, SIZE_LIMIT))


@pytest.fixture(scope="module")
def tiny_trace(qapp):  # painting text needs the application
    model, _ = load_model(None, "tiny", seed=1)
    return capture(model, get_tokenizer().encode("Hello, world. Hello again!"))


# ---- 1. a full disk keeps the old file and says so ----


def test_cli_svg_on_a_full_disk_keeps_the_old_file_and_exits_non_zero(tmp_path):
    args = [sys.executable, "main.py", "export", "--prompt", "Hello, world. Hello again!"]
    args += ["--out", str(tmp_path), "--layer", "1", "--head", "2", "--format", "svg"]
    args += ["--preset", "tiny"]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True, env=env, timeout=300)
    svg = tmp_path / "attention_L1_H2.svg"
    before = svg.read_bytes()
    assert len(before) > SIZE_LIMIT
    changed = [*args[:4], "Another prompt entirely", *args[5:]]
    result = subprocess.run(
        changed, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
        preexec_fn=_limited_child,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith("error: cannot write") and "File too large" in result.stderr
    assert "wrote" not in result.stdout
    assert svg.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attention_L1_H2.svg"]  # no leftovers


def test_window_svg_on_a_full_disk_keeps_the_old_file_and_says_so(window, qtbot, tmp_path):
    _run_typed(qtbot, window)
    request = ExportRequest("head", tmp_path, ("svg",))
    [svg] = window.export(request)
    before = svg.read_bytes()
    with file_size_limit(SIZE_LIMIT):  # the same file again: only a cut one would differ
        written = window.export(request)
    assert written == []
    assert svg.read_bytes() == before
    message = window.message_bar.text()
    assert "Export failed" in message and "File too large" in message


def test_png_csv_npy_svg_writes_that_fail_keep_the_old_files(tiny_trace, tmp_path):
    old = export_head(tiny_trace, 1, 2, tmp_path, ("png", "svg", "csv", "npy"), "first")
    before = {p: p.read_bytes() for p in old}
    big = np.random.default_rng(0).random((40, 40), np.float32)  # CSV and NPY: past it too
    labels = [str(i) for i in range(40)]
    with file_size_limit(SIZE_LIMIT):
        for fmt in ("png", "svg"):
            with pytest.raises(PartialExport, match="File too large"):
                export_head(tiny_trace, 1, 2, tmp_path, (fmt,), "a different title")
        with pytest.raises(ExportError, match="File too large"):
            write_matrix_csv(tmp_path / "attention_L1_H2.csv", big, labels, labels)
        with pytest.raises(ExportError, match="cannot write .*attention_L1_H2.npy"):
            write_npy(tmp_path / "attention_L1_H2.npy", big)
    assert {p: p.read_bytes() for p in old} == before
    assert len(list(tmp_path.iterdir())) == 4


# ---- 2. control characters in the prompt ----


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_control_characters_in_the_prompt_make_valid_files(tiny_trace, tmp_path, fmt):
    prompt = "red \x1b[31m nul \x00 soh \x01 bell \x07 end"
    export_head(tiny_trace, 0, 1, tmp_path, (fmt,), prompt)
    if fmt == "svg":
        root = ET.parse(tmp_path / "attention_L0_H1.svg").getroot()
        text = " ".join(root.itertext())
        assert r"red \x1b[31m nul \x00 soh \x01 bell \x07 end" in text
    else:
        assert (tmp_path / "attention_L0_H1.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_prompt_with_control_characters_makes_valid_svg(tmp_path):
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("colour \x1b[1m bold \x01\x02 done", encoding="utf-8")
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, "main.py", "export", "--prompt-file", str(prompt_file), "--out",
         str(out), "--layer", "0", "--head", "0", "--format", "svg", "--preset", "tiny"],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    text = " ".join(ET.parse(out / "attention_L0_H0.svg").getroot().itertext())
    assert r"colour \x1b[1m bold \x01\x02 done" in text


# ---- 3. a partial export names what was written ----


def test_partial_export_names_the_files_written_and_the_one_that_failed(window, qtbot, tmp_path):
    _run_typed(qtbot, window)
    sel = window.session.selection
    stem = f"attention_L{sel.layer}_H{sel.head}"
    (tmp_path / f"{stem}.svg").mkdir()  # a folder holds the SVG's name: that write fails
    written = window.export(ExportRequest("head", tmp_path, ("png", "svg", "csv", "npy")))
    assert written == []
    message = window.message_bar.text()
    assert "Nothing was written" not in message
    assert f"cannot write {tmp_path / f'{stem}.svg'}" in message
    assert f"written: {stem}.png, {stem}.csv, {stem}.npy" in message
    for ext in ("png", "csv", "npy"):
        assert (tmp_path / f"{stem}.{ext}").is_file()


def test_export_that_writes_nothing_says_so(window, qtbot, tmp_path):
    _run_typed(qtbot, window)
    sel = window.session.selection
    for ext in ("png", "npy"):
        (tmp_path / f"attention_L{sel.layer}_H{sel.head}.{ext}").mkdir()
    assert window.export(ExportRequest("head", tmp_path, ("png", "npy"))) == []
    assert "nothing written" in window.message_bar.text()


# ---- 4. the dialog and a folder that does not exist ----


def _dialog(window, qtbot, folder, answer, monkeypatch):
    asked = []

    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return answer

    monkeypatch.setattr(QMessageBox, "question", question)
    _run_typed(qtbot, window)
    window.settings.setValue("export/folder", str(folder.parent))
    window.actions_by_name["export"].trigger()
    dialog = window.findChild(ExportDialog)
    dialog.folder.setText(str(folder))
    for fmt in ("png", "svg", "csv"):
        dialog.formats[fmt].setChecked(False)
    dialog.export_button.click()
    return dialog, asked


def test_dialog_offers_to_create_a_missing_folder(window, qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "new" / "deeper"
    dialog, asked = _dialog(window, qtbot, folder, QMessageBox.StandardButton.Yes, monkeypatch)
    assert len(asked) == 1 and str(folder) in asked[0] and "Create it?" in asked[0]
    sel = window.session.selection
    assert [p.name for p in folder.iterdir()] == [f"attention_L{sel.layer}_H{sel.head}.npy"]
    assert not dialog.isVisible()
    assert window.settings.value("export/folder") == str(folder)


def test_dialog_keeps_the_typed_folder_when_declined(window, qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "not_made"
    dialog, asked = _dialog(window, qtbot, folder, QMessageBox.StandardButton.No, monkeypatch)
    assert len(asked) == 1
    assert dialog.isVisible() and dialog.folder.text() == str(folder)
    assert not folder.exists()


def test_dialog_keeps_the_typed_folder_when_the_export_fails(window, qtbot, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    dialog, asked = _dialog(window, qtbot, blocker, QMessageBox.StandardButton.Yes, monkeypatch)
    assert asked == []  # it exists (as a file): nothing to create
    assert dialog.isVisible() and dialog.folder.text() == str(blocker)
    assert dialog.problem.isVisible() and "failed" in dialog.problem.text()
    assert "Export failed" in window.message_bar.text()
    dialog.folder.setText(str(tmp_path / "b"))  # fixed: now it goes through and closes
    dialog.export_button.click()
    assert not dialog.isVisible() and (tmp_path / "b").is_dir()


# ---- 5. file modes: the umask for new files, an existing file's mode kept ----


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _writers(tiny_trace, tmp_path):
    model, _ = load_model(None, "tiny", seed=1)
    return {
        "npy": lambda p: write_npy(p, np.zeros(3)),
        "svg": lambda p: export_head(tiny_trace, 0, 0, p.parent, ("svg",), "x")[0],
        "npz": tiny_trace.save,
        "safetensors": lambda p: save_model(model, p),
    }


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_honour_the_umask(tiny_trace, tmp_path, mask, expected):
    for ext, write in _writers(tiny_trace, tmp_path).items():
        path = tmp_path / ("attention_L0_H0.svg" if ext == "svg" else f"file.{ext}")
        with umask(mask):
            written = write(path)
        assert _mode(written) == expected, ext


@pytest.mark.parametrize("existing", [0o644, 0o640, 0o600])
def test_overwriting_keeps_the_existing_files_mode(tiny_trace, tmp_path, existing):
    for ext, write in _writers(tiny_trace, tmp_path).items():
        path = tmp_path / ("attention_L0_H0.svg" if ext == "svg" else f"file.{ext}")
        path.write_bytes(b"old")
        path.chmod(existing)
        with umask(0o077):
            write(path)
        assert path.read_bytes() != b"old"
        assert _mode(path) == existing, ext


def test_panel_titles_with_control_characters_make_valid_svg(tiny_trace, tmp_path):
    """save_figure escapes every text it draws, the panel titles of a grid as well."""
    from explorer.export.render import HeatmapFigure, save_figure

    labels = ("a\x01", *"bcdefgh")  # panels wide enough for their titles (else elided)
    figures = [HeatmapFigure(np.eye(8), labels, labels, f"panel \x1b{h}") for h in range(2)]
    path = save_figure(tmp_path / "grid.svg", figures, "grid \x07", columns=2)
    text = " ".join(ET.parse(path).getroot().itertext())
    assert r"panel \x1b0" in text and r"panel \x1b1" in text and r"grid \x07" in text
