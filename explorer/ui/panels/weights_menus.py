"""Where weights come from, in the window: Model ▸ GPT-2 from the hub (cached models load
at once, offline; the others download with progress and Cancel), File ▸ Recent weights,
and the banner over a random or non-finite model with a one-click GPT-2."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from explorer.ui.settings import read_text, read_texts
from gpt_core import GPTConfig
from gpt_core.model.config import PRESETS
from gpt_core.weights.hub import HUB_MODELS, HubModel, is_cached

RECENT_KEY = "weights/recent"
RECENT_COUNT = 8
SMALL = next(model for model in HUB_MODELS if model.name == "gpt2")


def hub_model_of_size(config: GPTConfig | None) -> HubModel:
    """The hub's GPT-2 with `config`'s width, depth and heads (a preset's name is the hub's,
    but for "gpt2-small", which the hub calls "gpt2"); GPT-2 small for any other size."""
    if config is not None:
        shape = (config.emb_dim, config.n_layers, config.n_heads)
        for model in HUB_MODELS:
            preset = PRESETS.get("gpt2-small" if model.name == "gpt2" else model.name)
            if preset is not None and (preset.emb_dim, preset.n_layers, preset.n_heads) == shape:
                return model
    return SMALL


class WeightsMenus(QObject):
    def __init__(self, session, settings, file_menu, model_menu, parent=None):
        super().__init__(parent)
        self.session, self.settings = session, settings
        self.hub_menu = model_menu.addMenu("&GPT-2 from the hub")
        self.recent_menu = file_menu.addMenu("Recent &weights")
        self.hub_menu.aboutToShow.connect(self.fill_hub)
        self.recent_menu.aboutToShow.connect(self.fill_recent)
        session.modelChanged.connect(self.remember)  # the menus fill as they open

    def pick_file(self, parent) -> None:
        """Ask for a weights file (or a Hugging Face folder's config.json) and load it."""
        start = read_text(self.settings, "weights/folder", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(
            parent,
            "Load GPT-2 weights",
            start,
            "Weights (*.safetensors *.pth *.pt *.bin);;"
            "Hugging Face config (config.json);;All files (*)",
        )
        if path:
            self.settings.setValue("weights/folder", str(Path(path).parent))
            # A Hugging Face folder is picked through its config.json.
            source = str(Path(path).parent) if Path(path).name == "config.json" else path
            self.session.load_weights(source)

    def fill_hub(self) -> None:
        self.hub_menu.clear()
        for model in HUB_MODELS:
            where = (
                "in the cache" if is_cached(model.name) else f"download ≈ {model.megabytes:,} MB"
            )
            action = QAction(f"{model.title} — {where}", self.hub_menu)
            action.triggered.connect(
                lambda _=False, name=model.name: self.session.load_weights(name)
            )
            self.hub_menu.addAction(action)

    def recent(self) -> list[str]:
        return read_texts(self.settings, RECENT_KEY)

    def remember(self) -> None:
        model = self.session.state.model
        if model is None or model.is_random:
            return
        recent = [model.label] + [r for r in self.recent() if r != model.label]
        self.settings.setValue(RECENT_KEY, recent[:RECENT_COUNT])

    def fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.recent()
        self.recent_menu.setEnabled(bool(recent))
        for source in recent:
            action = QAction(source, self.recent_menu)
            action.triggered.connect(lambda _=False, s=source: self.session.load_weights(s))
            self.recent_menu.addAction(action)


class WeightsBanner(QWidget):
    """Over a random model: what random weights can and cannot show, and the trained GPT-2
    of its size (GPT-2 small for other sizes) one click away. Over non-finite weights: how
    many values are NaN or Inf. Over weights that stand in for ones that could not be
    loaded: why."""

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.setStyleSheet(
            "QWidget { background:#fff3bf; color:#5c3c00; }"
            "QLabel { padding:3px 8px; } QPushButton { padding:2px 10px; }"
        )
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.get_gpt2 = QPushButton()
        self.offered = SMALL  # the trained GPT-2 the button loads
        self.get_gpt2.clicked.connect(lambda: session.load_weights(self.offered.name))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.text, 1)
        row.addWidget(self.get_gpt2)
        session.modelChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        model = self.session.state.model
        parts = []
        random = model is not None and model.is_random
        if model is not None and model.instead_of:
            parts.append(model.instead_of)
        if random:
            parts.append(
                "Random weights: they show how GPT-2 computes, not what a trained model knows."
            )
        if model is not None and model.non_finite:
            count = sum(model.non_finite.values())
            parts.append(f"Non-finite weights: {count:,} NaN/Inf values.")
        self.text.setText(" ".join(parts))
        offered = self.offered = hub_model_of_size(model.config if model else None)
        name = offered.title.split(" (")[0]  # "GPT-2 medium", without its parameter count
        self.get_gpt2.setText(
            f"Open {name} (in the cache)"
            if is_cached(offered.name)
            else f"Download {name} (≈ {offered.megabytes:,} MB)"
        )
        self.get_gpt2.setVisible(random)
        self.setVisible(bool(parts))
