"""Feature switches are data, like the head and block switches (probe/interventions.py):
which features to switch off and which to push, at the SAE's site, at every position.

- ablate f: remove its contribution, x' = x - f(x)_f · W_dec[f];
- steer f by α: x' = x + α · W_dec[f].

In the SAE's terms the switched vector is decode(f') + (x - decode(f)), with f' the features
where f'_f = 0 (ablated) or f_f + α (steered): the same error term, switched features.
`site_edits()` turns them into an edit of the site's stage, for hooked() and capture().
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from torch import Tensor

from ..errors import SAEError
from ..model.config import GPTConfig
from ..probe.hook_points import Edit
from .autoencoder import SparseAutoencoder
from .sites import site_of


@dataclass(frozen=True)
class FeatureSwitches:
    ablate: frozenset[int] = field(default_factory=frozenset)  # features switched off
    steer: tuple[tuple[int, float], ...] = ()  # (feature, α), sorted, a feature at most once

    def __post_init__(self) -> None:
        object.__setattr__(self, "ablate", frozenset(int(f) for f in self.ablate))
        steer = tuple(sorted((int(f), float(alpha)) for f, alpha in self.steer))
        if len({f for f, _ in steer}) != len(steer):
            raise SAEError("a feature is steered twice; give each feature one α")
        object.__setattr__(self, "steer", steer)

    @property
    def is_empty(self) -> bool:
        return not self.ablate and not self.steer

    def check(self, d_sae: int) -> None:
        """SAEError for a feature the SAE does not have."""
        for feature in sorted(self.ablate | {f for f, _ in self.steer}):
            if not 0 <= feature < d_sae:
                raise SAEError(f"feature {feature} does not exist: features 0..{d_sae - 1:,}")

    def toggle_ablate(self, feature: int) -> FeatureSwitches:
        return FeatureSwitches(self.ablate ^ {feature}, self.steer)

    def with_steer(self, feature: int, alpha: float | None) -> FeatureSwitches:
        """Steer `feature` by α, or stop steering it (α None or 0)."""
        steer = [(f, a) for f, a in self.steer if f != feature]
        if alpha:
            steer.append((feature, alpha))
        return FeatureSwitches(self.ablate, tuple(steer))

    def switched(self, acts: Tensor) -> Tensor:
        """The features as the switches leave them ([.., d_sae]): f'."""
        if self.is_empty:
            return acts
        acts = acts.clone()
        if self.ablate:
            acts[..., sorted(self.ablate)] = 0.0
        for feature, alpha in self.steer:
            acts[..., feature] += alpha
        return acts

    def delta(self, sae: SparseAutoencoder, acts: Tensor) -> Tensor:
        """What the switches add to the site's vector: (f' - f) @ W_dec, [.., d_in]; only
        the switched features' rows are read."""
        features = sorted(self.ablate | {f for f, _ in self.steer})
        change = self.switched(acts)[..., features] - acts[..., features]  # [.., n]
        return change @ sae.W_dec[features]

    def describe(self) -> str:
        parts = []
        if self.ablate:
            parts.append("features off: " + ", ".join(str(f) for f in sorted(self.ablate)))
        if self.steer:
            parts.append("steered: " + ", ".join(f"{f} by {a:g}" for f, a in self.steer))
        return "; ".join(parts) or "none"

    def to_dict(self) -> dict:
        return {"ablate": sorted(self.ablate), "steer": [list(s) for s in self.steer]}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSwitches:
        return cls(frozenset(data.get("ablate", [])), tuple(map(tuple, data.get("steer", []))))

    @classmethod
    def parse(cls, ablate: Iterable[str] = (), steer: Iterable[str] = ()) -> FeatureSwitches:
        """The CLI's forms: --ablate-feature F and --steer F:ALPHA, each repeatable."""
        features = [_feature(text, "--ablate-feature") for text in ablate]
        pushes = []
        for text in steer:
            feature, sep, alpha = text.partition(":")
            if not sep:
                raise SAEError(f"--steer takes FEATURE:ALPHA such as 123:5.0, got {text!r}")
            pushes.append((_feature(feature, "--steer"), _alpha(alpha, text)))
        return cls(frozenset(features), tuple(pushes))


def site_edits(
    sae: SparseAutoencoder, switches: FeatureSwitches, cfg: GPTConfig
) -> dict[str, Edit]:
    """The edit of the SAE's site that applies the switches, by trace key, for
    hooked(model, edits=...) and capture(model, ..., edits=...); {} with no switches."""
    if switches.is_empty:
        return {}
    switches.check(sae.d_sae)
    site = site_of(sae.hook_name, cfg)

    def apply(x: Tensor) -> Tensor:  # x: [B, T, d_in]
        if switches.ablate:  # the ablated features' activations are needed
            return x + switches.delta(sae, sae.encode(x))
        return x + sum(alpha * sae.W_dec[f] for f, alpha in switches.steer)  # a constant

    return {site.key: site.edit(apply)}


def _feature(text: str, option: str) -> int:
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise SAEError(f"{option} takes a feature number such as 123, got {text!r}")
    return int(digits)


def _alpha(text: str, whole: str) -> float:
    try:
        alpha = float(text)
    except ValueError:
        alpha = float("nan")
    if not -1e6 <= alpha <= 1e6:
        raise SAEError(f"--steer takes FEATURE:ALPHA with ALPHA a number, got {whole!r}")
    return alpha
