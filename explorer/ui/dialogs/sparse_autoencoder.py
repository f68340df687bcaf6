"""Model ▸ Sparse autoencoder…: where an SAE comes from, in one source line that three
pickers fill: a folder on this computer (SAELens's layout: cfg.json +
sae_weights.safetensors), a hub source REPO:FOLDER typed in, or one of the public GPT-2
small releases (cached ones load at once, offline; the others download with progress and
Cancel in the status bar). Load hands the source to the session's job and closes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from explorer.ui.settings import read_text
from explorer.ui.widgets.tables import caption
from gpt_core import GPTCoreError
from gpt_core.sae import SAE_RELEASES, cached_folder, parse_source

FOLDER_KEY = "sae/folder"


class SparseAutoencoderDialog(QDialog):
    def __init__(self, session, settings, parent=None):
        super().__init__(parent)
        self.session, self.settings = session, settings
        self.setWindowTitle("Sparse autoencoder")
        self.source = QLineEdit()
        self.source.setPlaceholderText("a folder, or REPO:FOLDER on the Hugging Face hub")
        self.source.textChanged.connect(self._describe)
        browse = QPushButton("Folder…")
        browse.clicked.connect(self.pick_folder)
        self.release = QComboBox()
        for release in SAE_RELEASES:
            self.release.addItem(release.title, release)
        self.folder = QComboBox()
        self.release.currentIndexChanged.connect(self._fill_folders)
        use = QPushButton("Use this release")
        use.clicked.connect(self.use_release)
        self.note = caption()
        self.current = caption()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.load_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.load_button.setText("Load")
        buttons.accepted.connect(self.load)
        buttons.rejected.connect(self.reject)
        source_row = QHBoxLayout()
        source_row.addWidget(self.source, 1)
        source_row.addWidget(browse)
        release_row = QHBoxLayout()
        release_row.addWidget(self.folder, 1)
        release_row.addWidget(use)
        form = QFormLayout()
        form.addRow("Source", source_row)
        form.addRow("Public GPT-2 small SAEs", self.release)
        form.addRow("Site", release_row)
        layout = QVBoxLayout(self)
        layout.addWidget(self.current)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        self.resize(640, self.sizeHint().height())
        self._fill_folders()
        self._show_current()
        self._describe()

    def _show_current(self) -> None:
        loaded = self.session.state.features.loaded
        if loaded is None:
            self.current.setText("No SAE loaded.")
            return
        sae = loaded.sae
        fits = f" It does not fit this model: {loaded.misfit}." if loaded.misfit else ""
        self.current.setText(
            f"Loaded: {sae.source} · {sae.hook_name} · {sae.d_sae:,} features.{fits}"
        )

    def _fill_folders(self) -> None:
        release = self.release.currentData()
        self.folder.clear()
        for folder in release.folders:
            self.folder.addItem(folder)

    def use_release(self) -> None:
        release = self.release.currentData()
        self.source.setText(f"{release.repo_id}:{self.folder.currentText()}")

    def pick_folder(self) -> None:
        start = read_text(self.settings, FOLDER_KEY, str(Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "SAE folder (cfg.json + weights)", start)
        if folder:
            self.settings.setValue(FOLDER_KEY, str(Path(folder).parent))
            self.source.setText(folder)

    def _describe(self) -> None:
        """Where the source would load from: a folder, the hub cache, or a download."""
        text = self.source.text().strip()
        self.load_button.setEnabled(bool(text))
        if not text:
            self.note.setText("Pick a folder, type REPO:FOLDER, or use a public release.")
            return
        try:
            where = parse_source(text)
        except GPTCoreError as exc:
            self.note.setText(str(exc))
            return
        if isinstance(where, Path):
            self.note.setText("A folder on this computer.")
        elif cached_folder(where) is not None:
            self.note.setText("In the Hugging Face cache: loads at once, offline.")
        else:
            size = next(
                (f" (~{r.megabytes} MB)" for r in SAE_RELEASES if r.repo_id == where.repo_id), ""
            )
            self.note.setText(
                f"Not in the Hugging Face cache: it will be downloaded{size}, with progress "
                "and Cancel in the status bar. Without a network the message says what to "
                "download."
            )

    def load(self) -> None:
        source = self.source.text().strip()
        if source:
            self.session.features.load(source)
            self.accept()
