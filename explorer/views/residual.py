"""(Being built: for now the step's main array as a heatmap.)"""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout

from ..steps import Step
from ..widgets.heatmap import Heatmap
from .base import StageView


class ResidualView(StageView):
    kinds = ("resid_mid", "block_out")

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.heatmap = Heatmap()
        layout = QVBoxLayout(self)
        layout.addWidget(self.heatmap)

    def draw(self, step: Step) -> None:
        array = self.trace[step.main_key]
        if array.ndim == 1:
            array = array[None]
        self.heatmap.set_matrix(array, title=step.title)
