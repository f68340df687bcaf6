"""Embeddings: the token, positional and summed embeddings as tokens x dims heatmaps (one
shown large, picked with toggle buttons), the L2 norm of each token's three vectors, and
two PCA scatters: the prompt's token embeddings, and every position embedding of the model
joined in order (where position is encoded shows as a curve).
"""

from __future__ import annotations

import numpy as np

from explorer.ui.views.base import StageView
from explorer.ui.widgets.heatmap import TokensByDims
from explorer.ui.widgets.layout import VERTICAL, adaptive_splitter, splitter, stack
from explorer.ui.widgets.plots import ChoiceButtons, LabelledPlot
from explorer.ui.widgets.projection_plot import ProjectionPlot
from gpt_core.analysis import pca_2d
from gpt_core.probe.sections import Section

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
        self.tokens_pca = ProjectionPlot("Token embeddings of the prompt")
        self.positions_pca = ProjectionPlot("Every position embedding, in order")
        self._lay_out()
        self.choice.changed.connect(self.redraw)
        self.tokens_pca.pointClicked.connect(self.session.select_position)
        self.positions_pca.pointClicked.connect(self._position_clicked)
        self.heatmap.clicked.connect(lambda row, col: self.session.select_position(row))
        self.norms.placeClicked.connect(self.session.select_position)

    def _lay_out(self) -> None:
        projections = adaptive_splitter(  # side by side where three plots fit whole
            1000, self.norms, self.tokens_pca, self.positions_pca, stretch=(1, 1, 1)
        )
        plots = splitter(VERTICAL, self.heatmap, projections, stretch=(3, 2))
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
        self._draw_projections(trace, section, position)

    def show_part(self, part: str) -> None:
        """The tour's embedding ("token", "position" or "sum") shown large."""
        if part in self.choice.buttons:
            self.choice.buttons[part].setChecked(True)

    def _draw_projections(self, trace, section: Section, position: int) -> None:
        tokens = trace[section.key("token")]  # [T, E]
        self.tokens_pca.set_projection(pca_2d(tokens), self.labels(), [position])
        positions = self.session.state.model.positions_pca
        self.positions_pca.setVisible(positions is not None)
        if positions is not None:
            names = [str(p) for p in range(len(positions.coords))]
            self.positions_pca.set_projection(positions, names, [position], joined=True)

    def _position_clicked(self, position: int) -> None:
        if position < self.trace.n_tokens:
            self.session.select_position(position)
