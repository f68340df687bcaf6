"""Embeddings: the token, positional and summed embeddings as tokens x dims heatmaps (one
shown large, picked with toggle buttons), and the L2 norm of each token's three vectors.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QSplitter,
    QVBoxLayout,
)

from ..steps import Step
from ..widgets.heatmap import Heatmap
from ..widgets.plots import ChoiceButtons, LabelledPlot, number_columns
from .base import StageView

# choice -> (button text, trace key, what the heatmap title calls it, curve colour)
EMBEDDINGS = {
    "token": ("Token", "embeddings/token", "Token embedding E_tok[id]", "#1c7ed6"),
    "position": ("Position", "embeddings/position", "Positional embedding E_pos[t]", "#f08c00"),
    "sum": ("Sum", "embeddings/sum", "Sum x₀ = E_tok[id] + E_pos[t]", "#2b8a3e"),
}


class EmbeddingsView(StageView):
    kinds = ("embeddings",)

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.choice = ChoiceButtons(
            "Shown large:", {key: spec[0] for key, spec in EMBEDDINGS.items()}, "sum"
        )
        self.choice.changed.connect(self.redraw)
        self.heatmap = Heatmap()
        self.heatmap.clicked.connect(lambda row, col: self.session.select_position(row))
        self.norms = LabelledPlot("L2 norm of each token's vectors", "token", "‖vector‖₂")
        for key, (text, _, _, color) in EMBEDDINGS.items():
            self.norms.add_curve(key, text, color)
        self.norms.placeClicked.connect(self.session.select_position)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.heatmap)
        split.addWidget(self.norms)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.choice)
        layout.addWidget(split, 1)

    def draw(self, step: Step) -> None:
        trace, labels, position = self.trace, self.labels(), self.session.position
        text, key, name, _ = EMBEDDINGS[self.choice.chosen]
        ids = trace.token_ids
        matrix = trace[key]  # [T, E]
        self.heatmap.set_matrix(
            matrix,
            labels,
            [str(d) for d in range(matrix.shape[1])],
            signed=True,
            title=f"{name} · {matrix.shape[0]} tokens × {matrix.shape[1]} dims",
            hover=lambda r, c, v: (
                f"{text} embedding · token {labels[r]} (id {ids[r]}) · dim {c}: {v:.6g}"
            ),
        )
        number_columns(self.heatmap)
        self.heatmap.set_highlight_row(position)
        self.norms.set_places(labels)
        for choice, (_, key, _, _) in EMBEDDINGS.items():
            self.norms.set_curve(choice, np.linalg.norm(trace[key], axis=-1))  # [T]
        self.norms.set_marker(position)
