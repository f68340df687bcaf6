"""The stage views, one per kind of section; StagePanel shows the one for the selected
section. A view's `name` is the `view` the stage registry gives its sections."""

from __future__ import annotations

from explorer.session.session import Session
from explorer.ui.views.attention import AttentionView
from explorer.ui.views.attention_steps import AttentionStepsView
from explorer.ui.views.base import StageView
from explorer.ui.views.embeddings import EmbeddingsView
from explorer.ui.views.feedforward import FeedForwardView
from explorer.ui.views.layernorm import LayerNormView
from explorer.ui.views.output import OutputView
from explorer.ui.views.residual import ResidualView
from explorer.ui.views.tokens import TokensView

VIEW_CLASSES: tuple[type[StageView], ...] = (
    TokensView,
    EmbeddingsView,
    LayerNormView,
    AttentionView,
    AttentionStepsView,
    ResidualView,
    FeedForwardView,
    OutputView,
)


def make_views(session: Session) -> list[StageView]:
    return [cls(session) for cls in VIEW_CLASSES]
