"""What a patching experiment measures (Metric) and what it found (PatchResult)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import torch
from torch import Tensor

METRICS = {
    "logit_diff": "logit[answer] − logit[distractor]",
    "logprob": "log p(answer)",
    "prob": "p(answer)",
}
DIRECTIONS = {
    "denoise": "clean activations patched into the corrupted run",
    "noise": "corrupted activations patched into the clean run",
}
PATH_KINDS = ("q", "k", "v")


@dataclass(frozen=True)
class Metric:
    """One number read off the next-token logits at one position."""

    kind: str  # a key of METRICS
    answer: int  # token id
    distractor: int | None  # token id; needed by "logit_diff"
    position: int  # the position whose next-token prediction is read

    def __post_init__(self) -> None:
        if self.kind not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {self.kind!r}")
        if self.kind == "logit_diff" and self.distractor is None:
            raise ValueError("the logit difference needs a distractor token")
        if self.kind == "logit_diff" and self.distractor == self.answer:
            raise ValueError(
                "the distractor is the answer: their logit difference is always 0; "
                "choose another distractor"
            )

    def __call__(self, logits: Tensor) -> Tensor:
        """logits [B, vocab] at the metric position -> [B]."""
        logits = logits.float()
        if self.kind == "logit_diff":
            return logits[:, self.answer] - logits[:, self.distractor]
        log_p = torch.log_softmax(logits, dim=-1)[:, self.answer]
        return log_p if self.kind == "logprob" else log_p.exp()

    def describe(self) -> str:
        return METRICS[self.kind] + f" after position {self.position}"


@dataclass(frozen=True)
class Receiver:
    """Where path patching lets a sender head's output arrive: one input (q, k or v) of a
    later head, or the logits (layer None)."""

    layer: int | None
    head: int | None = None
    kind: str = "logits"  # "q", "k", "v" or "logits"

    def __post_init__(self) -> None:
        into_logits = self.layer is None
        if into_logits != (self.kind == "logits") or into_logits != (self.head is None):
            raise ValueError(
                "a receiver is the logits (no layer, no head) or a head's q, k or v input, "
                f"got layer {self.layer}, head {self.head}, input {self.kind!r}"
            )
        if not into_logits and self.kind not in PATH_KINDS:
            raise ValueError(f"a receiver's input is q, k or v, got {self.kind!r}")

    @classmethod
    def parse(cls, text: str) -> Receiver:
        """ "logits", or "L.H.q" / "L.H.k" / "L.H.v"."""
        if text.strip().lower() == "logits":
            return cls(None)
        parts = text.strip().split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ValueError(f"a receiver is 'logits' or LAYER.HEAD.q|k|v, got {text!r}")
        if parts[2] not in PATH_KINDS:
            raise ValueError(f"a receiver's input is q, k or v, got {parts[2]!r}")
        return cls(int(parts[0]), int(parts[1]), parts[2])

    def describe(self) -> str:
        return "logits" if self.layer is None else f"{self.layer}.{self.head}.{self.kind}"


@dataclass(frozen=True)
class PatchResult:
    """Raw metric values per patched cell (float32 arrays in the layouts of sweeps.SWEEPS) and
    their first-order estimates, for one pair of runs."""

    clean_ids: np.ndarray  # [T] int64
    corrupted_ids: np.ndarray  # [T] int64
    metric: Metric
    direction: str  # a key of DIRECTIONS
    clean_value: float  # the metric on the clean run
    corrupted_value: float  # ... and on the corrupted run
    exact: Mapping[str, np.ndarray] = field(default_factory=dict)  # sweep -> patched metric
    attribution: Mapping[str, np.ndarray] = field(default_factory=dict)  # sweep -> estimate
    path: np.ndarray | None = None  # [L, H] path patching, NaN where no path exists
    receiver: Receiver | None = None  # of `path`
    logit_attribution: Mapping[str, float] = field(default_factory=dict)  # DLA, clean run

    def __post_init__(self) -> None:
        for name in ("exact", "attribution", "logit_attribution"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @property
    def baseline(self) -> float:
        """The metric of the run that is patched into (corrupted when denoising)."""
        return self.corrupted_value if self.direction == "denoise" else self.clean_value

    @property
    def span(self) -> float:
        return self.clean_value - self.corrupted_value

    @property
    def same_metric(self) -> bool:
        """Clean and corrupted give the same metric: normalising would divide by zero."""
        return abs(self.span) <= 1e-6 * max(1.0, abs(self.clean_value))

    def normalised(self, values: np.ndarray) -> np.ndarray:
        """(patched − corrupted) / (clean − corrupted): 0 = corrupted, 1 = clean."""
        if self.same_metric:
            return np.full_like(values, np.nan)
        return (values - self.corrupted_value) / self.span

    def estimate(self, name: str) -> np.ndarray:
        """The attribution estimate as a patched metric value (baseline + first-order change)."""
        return self.baseline + self.attribution[name]
