"""The stage views, one per kind of step; StagePanel shows the one for the selected step."""

from __future__ import annotations

from ..session import Session
from .attention import AttentionView
from .base import StageView


def make_views(session: Session) -> list[StageView]:
    return [AttentionView(session)]
