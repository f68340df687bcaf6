"""Ctrl+E: what to export (the selected head, the whole layer, the trace), in which
formats and where. The dialog only gathers the request; the window writes the files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
)

from .exporting import FORMATS


@dataclass(frozen=True)
class ExportRequest:
    what: str  # "head", "layer" or "trace"
    folder: Path
    formats: tuple[str, ...]  # for head and layer: some of png, svg, csv, npy
    filename: str = ""  # for the trace


class ExportDialog(QDialog):
    exportRequested = Signal(object)  # ExportRequest

    def __init__(self, session, folder: str, parent=None, what: str = "head"):
        super().__init__(parent)
        self.setWindowTitle("Export")
        sel = session.selection
        self.head = QRadioButton(f"Selected head: layer {sel.layer}, head {sel.head}")
        self.layer = QRadioButton(
            f"Whole layer {sel.layer}: grid of all heads (image) and their weights (.npy)"
        )
        self.trace = QRadioButton(
            "Whole trace (.npz, every stage; with gradients after a backward step)"
        )
        {"head": self.head, "layer": self.layer, "trace": self.trace}[what].setChecked(True)
        self.formats = {fmt: QCheckBox(fmt.upper()) for fmt in FORMATS}
        for box in self.formats.values():
            box.setChecked(True)
        self.folder = QLineEdit(folder)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        formats = QHBoxLayout()
        formats.addWidget(QLabel("Formats:"))
        for box in self.formats.values():
            formats.addWidget(box)
        folder_row = QHBoxLayout()
        folder_row.addWidget(QLabel("Folder:"))
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        layout = QVBoxLayout(self)
        for widget in (self.head, self.layer, self.trace):
            layout.addWidget(widget)
        layout.addLayout(formats)
        layout.addLayout(folder_row)
        layout.addWidget(buttons)
        self.trace.toggled.connect(lambda on: [b.setEnabled(not on) for b in self.formats.values()])

    def request(self) -> ExportRequest:
        what = "head" if self.head.isChecked() else "layer" if self.layer.isChecked() else "trace"
        formats = tuple(f for f, box in self.formats.items() if box.isChecked())
        return ExportRequest(
            what,
            Path(self.folder.text()).expanduser(),
            formats,
            "trace.npz" if what == "trace" else "",
        )

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _accept(self) -> None:
        request = self.request()
        if request.what != "trace" and not request.formats:
            return
        self.exportRequested.emit(request)
        self.accept()
