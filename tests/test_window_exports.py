"""Exports from the window: one head in every format, the layer's grid, the trace, the
dialog and its shortcut, and a folder that cannot be written."""

import csv
import xml.etree.ElementTree as ET

import numpy as np
from PySide6.QtGui import QImage

from explorer.ui.dialogs.export import ExportDialog, ExportRequest
from tests.test_window import _run_typed


def _export_all(window, tmp_path, what="head"):
    return window.export(ExportRequest(what, tmp_path, ("png", "svg", "csv", "npy")))


def test_export_head_png_svg_csv_npy(window, qtbot, tmp_path):
    _run_typed(qtbot, window)
    session = window.session
    session.select_layer(1)
    session.select_head(3)
    written = _export_all(window, tmp_path)
    assert sorted(p.name for p in written) == sorted(
        f"attention_L1_H3.{ext}" for ext in ("png", "svg", "csv", "npy")
    )
    weights = session.trace.head_weights(1, 3)
    labels = session.trace.position_labels
    image = QImage(str(tmp_path / "attention_L1_H3.png"))
    assert not image.isNull()
    assert image.width() > 8 * len(labels) and image.height() > 8 * len(labels)
    svg = ET.parse(tmp_path / "attention_L1_H3.svg")
    texts = " ".join(t for t in svg.getroot().itertext())
    for label in labels:
        assert label in texts
    assert "Layer 1 · head 3" in texts
    matrix, rows, cols = _read_matrix_csv(tmp_path / "attention_L1_H3.csv")
    assert rows == labels and cols == labels
    assert np.array_equal(matrix, weights)
    assert np.array_equal(np.load(tmp_path / "attention_L1_H3.npy"), weights)
    assert str(tmp_path) == window.settings.value("export/folder")


def test_export_layer_grid_and_trace(window, qtbot, tmp_path):
    _run_typed(qtbot, window)
    session = window.session
    session.select_layer(0)
    written = window.export(ExportRequest("layer", tmp_path, ("png", "svg", "npy")))
    assert {p.name for p in written} == {
        "attention_L0_grid.png",
        "attention_L0_grid.svg",
        "attention_L0.npy",
    }
    assert np.array_equal(
        np.load(tmp_path / "attention_L0.npy"), session.trace["blocks/0/attn/weights"]
    )
    assert not QImage(str(tmp_path / "attention_L0_grid.png")).isNull()
    [path] = window.export(ExportRequest("trace", tmp_path, (), "run.npz"))
    from gpt_core import Trace

    assert np.array_equal(Trace.load(path)["blocks/1/ff/gelu"], session.trace["blocks/1/ff/gelu"])


def test_export_dialog_and_shortcut(window, qtbot, tmp_path):
    _run_typed(qtbot, window)
    window.settings.setValue("export/folder", str(tmp_path))
    window.actions_by_name["export"].trigger()
    dialog = window.findChild(ExportDialog)
    assert dialog is not None and dialog.isVisible()
    assert dialog.folder.text() == str(tmp_path)
    dialog.formats["svg"].setChecked(False)
    dialog.formats["npy"].setChecked(False)
    dialog.export_button.click()
    names = sorted(p.name for p in tmp_path.iterdir())
    sel = window.session.selection
    assert names == [
        f"attention_L{sel.layer}_H{sel.head}.csv",
        f"attention_L{sel.layer}_H{sel.head}.png",
    ]
    assert window.actions_by_name["export"].shortcut().toString() == "Ctrl+E"


def test_heatmap_context_menu_offers_exports(window, qtbot):
    _run_typed(qtbot, window)
    window.session.select_layer(0)
    view = window.stage_panel.current_view()
    texts = [a.text() for a in view.heatmap._menu_actions]
    assert any("Export" in t for t in texts)


# ---- bad input: a message, the app stays usable, nothing is lost ----


def test_unwritable_export_folder_is_a_message_and_writes_nothing(window, qtbot, tmp_path):
    _run_typed(qtbot, window)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert _export_all(window, blocker / "sub") == []
    assert "Export failed" in window.message_bar.text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
    assert window.session.trace is not None
    missing = tmp_path / "no" / "folder"
    assert window.export(ExportRequest("trace", missing, (), "t.npz")) == []
    assert "Export failed" in window.message_bar.text()


def _read_matrix_csv(path):
    """(matrix, row labels, column labels) of a CSV export, read with the csv module."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    matrix = np.array([[float(v) for v in r[1:]] for r in rows[1:]], dtype=np.float32)
    return matrix, [r[0] for r in rows[1:]], rows[0][1:]
