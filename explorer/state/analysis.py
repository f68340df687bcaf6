"""The state of the Sub-layer lens and Attribution tabs, as plain data with pure transitions
(part of the AppState in app_state.py; nothing here imports Qt or runs the model).

The lens grid fills column by column as the worker reads positions (the visible ones
first); the attribution run keeps every method's scores for one explained quantity. Both
belong to one trace, the run on screen, and are shown only while it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gpt_core import Trace
from gpt_core.analysis import SublayerLens
from gpt_core.analysis.input_attribution import (
    DEFAULT_STEPS,
    INPUT_ATTRIBUTION_METHODS,
    Explained,
    InputAttribution,
)
from gpt_core.analysis.sublayer_lens import LENS_TOP_COUNT, NOT_FINITE


@dataclass(frozen=True, eq=False)
class SublayerLensGrid:
    """The lens at every sub-layer of one trace, read so far: columns not read yet hold NaN
    (floats) and -1 (ids)."""

    trace: Trace  # the run it reads
    target: int | None  # the token whose rank it gives
    labels: tuple[str, ...]  # one per point: "embeddings", "B0 mid", …
    read: np.ndarray  # [T] bool: positions read
    top1_probs: np.ndarray  # [P, T] float32
    entropy: np.ndarray  # [P, T] float32, nats
    kl: np.ndarray  # [P, T] float32, KL(final ‖ lens), nats
    target_rank: np.ndarray  # [P, T] float32 (NaN: no target, or logits not finite), 0 = top
    topk_ids: np.ndarray  # [P, T, LENS_TOP_COUNT] int64, most likely first
    topk_probs: np.ndarray  # [P, T, LENS_TOP_COUNT] float32

    @classmethod
    def empty(cls, trace: Trace, target: int | None, labels: tuple[str, ...]) -> SublayerLensGrid:
        points, tokens = len(labels), trace.n_tokens
        nan = lambda *shape: np.full(shape, np.nan, dtype=np.float32)  # noqa: E731
        return cls(
            trace, target, labels, np.zeros(tokens, dtype=bool),
            nan(points, tokens), nan(points, tokens), nan(points, tokens), nan(points, tokens),
            np.full((points, tokens, LENS_TOP_COUNT), -1, dtype=np.int64),
            nan(points, tokens, LENS_TOP_COUNT),
        )  # fmt: skip

    @property
    def complete(self) -> bool:
        return bool(self.read.all())

    def quantity(self, name: str) -> np.ndarray:
        """[P, T] the values of one of SUBLAYER_LENS_QUANTITIES."""
        return getattr(self, name)

    def filled(self, part: SublayerLens) -> SublayerLensGrid:
        """A copy with the columns `part` read."""
        columns = part.positions
        arrays = {}
        for name in ("top1_probs", "entropy", "kl", "topk_ids", "topk_probs", "target_rank"):
            array = getattr(self, name).copy()
            value = getattr(part, name)
            if name == "target_rank" and value is not None:  # no rank where logits broke
                value = np.where(value == NOT_FINITE, np.nan, value)
            if value is not None:
                array[:, columns] = value
            array.flags.writeable = False
            arrays[name] = array
        read = self.read.copy()
        read[columns] = True
        return replace(self, read=read, **arrays)


# The quantities the grid can colour its cells by: SublayerLensGrid field -> menu text.
SUBLAYER_LENS_QUANTITIES = {
    "top1_probs": "Top-1 probability",
    "entropy": "Entropy (nats)",
    "kl": "KL(output ‖ lens) (nats)",
    "target_rank": "Rank of the target (0 = top)",
}


def current_sublayer_lens(state) -> SublayerLensGrid | None:
    """The grid of the run on screen for the chosen target, if one has been started."""
    grid = state.sublayer_lens
    if grid is None or grid.trace is not state.trace or grid.target != state.sublayer_lens_target:
        return None
    return grid


def with_sublayer_lens_target(state, target: int | None):
    return replace(state, sublayer_lens_target=target)


def with_sublayer_lens_columns(state, trace: Trace, target: int | None, part: SublayerLens):
    """Columns read for `trace` and `target`, if those are still the ones shown."""
    if state.trace is not trace or state.sublayer_lens_target != target:
        return state
    grid = current_sublayer_lens(state) or SublayerLensGrid.empty(trace, target, part.labels)
    return replace(state, sublayer_lens=grid.filled(part))


def sublayer_lens_columns_missing(state) -> np.ndarray:
    """[T] bool: the positions of the run on screen the grid has not read."""
    grid = current_sublayer_lens(state)
    if grid is not None:
        return ~grid.read
    return np.ones(state.trace.n_tokens if state.trace else 0, dtype=bool)


@dataclass(frozen=True)
class AttributionSettings:
    """What the Attribution tab explains and how."""

    target: int | None = None  # token id whose logit is explained; None: not chosen
    foil: int | None = None  # token id subtracted (contrastive), or None
    steps: int = DEFAULT_STEPS["gauss"]  # integrated-gradients steps
    baseline_token: int | None = None  # None: the zero vector
    methods: tuple[str, ...] = INPUT_ATTRIBUTION_METHODS  # the methods run
    integration: str = "gauss"  # integrated gradients' rule, one of INTEGRATION_RULES


@dataclass(frozen=True, eq=False)
class AttributionRun:
    trace: Trace  # the run on screen it explains (ids, switches, model)
    settings: AttributionSettings
    explained: Explained
    result: InputAttribution
    seconds: float

    @property
    def reach(self) -> int:
        """How many tokens can reach the explained position: 0 … position."""
        return self.explained.position + 1


def with_attribution_settings(state, settings: AttributionSettings):
    return replace(state, attribution=settings)


def with_attribution_run(state, run: AttributionRun):
    """An attribution, if it still explains the run on screen."""
    return replace(state, attribution_run=run) if run.trace is state.trace else state


def current_attribution(state) -> AttributionRun | None:
    """The attribution of the run on screen, or None once the run or settings changed."""
    run = state.attribution_run
    if run is None or run.trace is not state.trace or run.settings != state.attribution:
        return None
    return run
