"""The stage views, one per kind of section; StagePanel shows the one for the selected
section. A view's `name` is the `view` the stage registry gives its sections."""

from __future__ import annotations

from ..session import Session
from .attention import AttentionView
from .base import StageView
from .embeddings import EmbeddingsView
from .feedforward import FeedForwardView
from .layernorm import LayerNormView
from .output import OutputView
from .residual import ResidualView

VIEW_CLASSES: tuple[type[StageView], ...] = (
    EmbeddingsView,
    LayerNormView,
    AttentionView,
    ResidualView,
    FeedForwardView,
    OutputView,
)


def make_views(session: Session) -> list[StageView]:
    return [cls(session) for cls in VIEW_CLASSES]
