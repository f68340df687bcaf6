"""The stage views, one per kind of step; StagePanel shows the one for the selected step."""

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
