"""Embeddings: the token, positional and summed embeddings as tokens x dims heatmaps (one
shown large, picked with toggle buttons), and the L2 norm of each token's three vectors.
"""

from __future__ import annotations

import numpy as np

from gpt_core.probe.sections import Section

from ..widgets.heatmap import TokensByDims
from ..widgets.layout import VERTICAL, splitter, stack
from ..widgets.plots import ChoiceButtons, LabelledPlot
from .base import StageView

# stage role -> (button text, what the heatmap title calls it, curve colour)
EMBEDDINGS = {
    "token": ("Token", "Token embedding E_tok[id]", "#1c7ed6"),
    "position": ("Position", "Positional embedding E_pos[t]", "#f08c00"),
    "sum": ("Sum", "Sum x₀ = E_tok[id] + E_pos[t]", "#2b8a3e"),
}


class EmbeddingsView(StageView):
    name = "embeddings"

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.choice = ChoiceButtons(
            "Shown large:", {role: spec[0] for role, spec in EMBEDDINGS.items()}, "sum"
        )
        self.heatmap = TokensByDims()
        self.heatmap.setMinimumHeight(240)
        self.norms = LabelledPlot("L2 norm of each token's vectors", "token", "‖vector‖₂")
        for role, (text, _, color) in EMBEDDINGS.items():
            self.norms.add_curve(role, text, color)
        self._lay_out()
        self.choice.changed.connect(self.redraw)
        self.heatmap.clicked.connect(lambda row, col: self.session.select_position(row))
        self.norms.placeClicked.connect(self.session.select_position)

    def _lay_out(self) -> None:
        plots = splitter(VERTICAL, self.heatmap, self.norms, stretch=(3, 2))
        stack((self.choice, 0), plots, owner=self)

    def draw(self, section: Section) -> None:
        trace, labels, position = self.trace, self.labels(), self.session.position
        role = self.choice.chosen
        text, name, _ = EMBEDDINGS[role]
        ids = trace.token_ids
        self.heatmap.set_tokens_dims(
            trace[section.key(role)],  # [T, E]
            labels,
            name,
            position,
            hover=lambda r, c, v: (
                f"{text} embedding · token {labels[r]} (id {ids[r]}) · dim {c}: {v:.6g}"
            ),
        )
        self.norms.set_places(labels)
        for curve in EMBEDDINGS:
            self.norms.set_curve(curve, np.linalg.norm(trace[section.key(curve)], axis=-1))  # [T]
        self.norms.set_marker(position)
