"""Ctrl+E: what to export (the selected head, the whole layer, the trace), in which
formats and where. The dialog gathers the request and hands it to the window's export; it
closes only once that succeeded, so a typed folder is never lost to a failed export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
)

from explorer.export.attention import FORMATS


@dataclass(frozen=True)
class ExportRequest:
    what: str  # "head", "layer" or "trace"
    folder: Path
    formats: tuple[str, ...]  # for head and layer: some of png, svg, csv, npy
    filename: str = ""  # for the trace


class ExportDialog(QDialog):
    def __init__(
        self,
        session,
        folder: str,
        export: Callable[[ExportRequest], list[Path]],
        parent=None,
        what: str = "head",
    ):
        """export: writes the request, returning the files written ([] when it failed)."""
        super().__init__(parent)
        self.setWindowTitle("Export")
        self._export = export
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
        self.problem = QLabel(wordWrap=True)
        self.problem.hide()
        layout.addWidget(self.problem)
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
        if not request.folder.exists() and not self._create(request.folder):
            return
        if self._export(request):
            self.accept()
        else:
            self._show_problem("The export failed (the window's message says why).")

    def _create(self, folder: Path) -> bool:
        """Offer to create a missing folder; False (the dialog stays open) if not made."""
        answer = QMessageBox.question(
            self, "Export", f"The folder {folder} does not exist. Create it?"
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            self._show_problem(f"Cannot create {folder}: {exc.strerror or exc}.")
            return False
        return True

    def _show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.show()
