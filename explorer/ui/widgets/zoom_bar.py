"""The controls above a zoomable heatmap: its colour scale, box zoom and a reset button."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from explorer.ui.widgets.colour_scale import SCALES
from explorer.ui.widgets.heatmap import Heatmap


class ZoomBar(QWidget):
    """Drives `heatmap` (zoom turned on); `scaleChanged` tells others sharing the scale."""

    scaleChanged = Signal(str)

    def __init__(self, heatmap: Heatmap, scale: str = "auto", parent=None):
        super().__init__(parent)
        self.heatmap = heatmap
        heatmap.enable_zoom()
        heatmap.set_colour_scale(scale)
        self.scale = QComboBox()
        for key, text in SCALES.items():
            self.scale.addItem(text, key)
        self.scale.setCurrentIndex(list(SCALES).index(scale))
        self.scale.setToolTip(
            "0 – 1: the weights' own range · 0 – visible max: all colours for what is in view "
            "(zoom in to see small weights) · log₁₀: four decades below the visible max"
        )
        self.box = QPushButton("Box zoom")
        self.box.setCheckable(True)
        self.box.setToolTip("On: drag a box to zoom into. Off: drag pans. The wheel zooms.")
        self.reset = QPushButton("Reset zoom")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Colours:"))
        layout.addWidget(self.scale)
        layout.addWidget(self.box)
        layout.addWidget(self.reset)
        layout.addStretch(1)
        self.scale.currentIndexChanged.connect(self._scale_chosen)
        self.scale.activated.connect(lambda _: setattr(self, "person_chose", True))
        self.person_chose = False  # once the person picks a scale, suggestions stop
        self.box.toggled.connect(heatmap.box_zoom)
        self.reset.clicked.connect(heatmap.reset_zoom)

    @property
    def chosen(self) -> str:
        return self.scale.currentData()

    def suggest(self, scale: str) -> None:
        """Switch to `scale` unless the person has picked one themselves."""
        if not self.person_chose and scale != self.chosen:
            self.scale.setCurrentIndex(list(SCALES).index(scale))

    def _scale_chosen(self) -> None:
        self.heatmap.set_colour_scale(self.chosen)
        self.scaleChanged.emit(self.chosen)
