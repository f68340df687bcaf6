"""Interventions are data: which heads to switch off and which blocks to skip.

They act through forward hooks at run time (see probe.py), never by editing weights:
- a head is ablated on its own context vector, before out_proj mixes the heads; "zero"
  replaces it with zeros, "mean" with its mean over the positions;
- a skipped block returns its input unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..model.config import GPTConfig

ABLATION_MODES = ("zero", "mean")


@dataclass(frozen=True)
class Interventions:
    ablate_heads: frozenset[tuple[int, int]] = field(default_factory=frozenset)  # (layer, head)
    skip_layers: frozenset[int] = field(default_factory=frozenset)  # 0-based block indices
    mode: str = "zero"  # how an ablated head's context vector is replaced: "zero" | "mean"

    def __post_init__(self) -> None:
        heads = frozenset((int(layer), int(head)) for layer, head in self.ablate_heads)
        object.__setattr__(self, "ablate_heads", heads)
        object.__setattr__(self, "skip_layers", frozenset(int(layer) for layer in self.skip_layers))
        if self.mode not in ABLATION_MODES:
            raise ValueError(f"ablation mode must be 'zero' or 'mean', got {self.mode!r}")

    @property
    def is_empty(self) -> bool:
        return not self.ablate_heads and not self.skip_layers

    def heads_in(self, layer: int) -> list[int]:
        return sorted(h for layer_, h in self.ablate_heads if layer_ == layer)

    def check(self, cfg: GPTConfig) -> None:
        """ValueError for a layer or head the model does not have."""
        for layer, head in sorted(self.ablate_heads):
            if not 0 <= layer < cfg.n_layers or not 0 <= head < cfg.n_heads:
                raise ValueError(
                    f"head {layer}.{head} does not exist: layers 0..{cfg.n_layers - 1}, "
                    f"heads 0..{cfg.n_heads - 1}"
                )
        for layer in sorted(self.skip_layers):
            if not 0 <= layer < cfg.n_layers:
                raise ValueError(f"block {layer} does not exist: blocks 0..{cfg.n_layers - 1}")

    # --- building new ones (the GUI toggles) ---
    def toggle_head(self, layer: int, head: int) -> Interventions:
        return Interventions(self.ablate_heads ^ {(layer, head)}, self.skip_layers, self.mode)

    def toggle_layer(self, layer: int) -> Interventions:
        return Interventions(self.ablate_heads, self.skip_layers ^ {layer}, self.mode)

    def with_mode(self, mode: str) -> Interventions:
        return Interventions(self.ablate_heads, self.skip_layers, mode)

    # --- text forms: the CLI's --ablate 0.3,2.1 --skip 5, and a label for people ---
    @classmethod
    def parse(cls, ablate: str = "", skip: str = "", mode: str = "zero") -> Interventions:
        heads = []
        for item in _items(ablate):
            layer, sep, head = item.partition(".")
            if not sep or not _is_number(layer) or not _is_number(head):
                raise ValueError(f"--ablate takes LAYER.HEAD items such as 0.3, got {item!r}")
            heads.append((int(layer), int(head)))
        layers = []
        for item in _items(skip):
            if not _is_number(item):
                raise ValueError(f"--skip takes block numbers such as 5, got {item!r}")
            layers.append(int(item))
        return cls(frozenset(heads), frozenset(layers), mode)

    def describe(self) -> str:
        if self.is_empty:
            return "none"
        parts = []
        if self.ablate_heads:
            heads = ", ".join(f"L{layer}.H{head}" for layer, head in sorted(self.ablate_heads))
            parts.append(f"heads off ({self.mode}): {heads}")
        if self.skip_layers:
            parts.append("blocks skipped: " + ", ".join(str(i) for i in sorted(self.skip_layers)))
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "ablate_heads": sorted([list(h) for h in self.ablate_heads]),
            "skip_layers": sorted(self.skip_layers),
            "mode": self.mode,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Interventions:
        return cls(
            frozenset(tuple(h) for h in data.get("ablate_heads", [])),
            frozenset(data.get("skip_layers", [])),
            data.get("mode", "zero"),
        )


def _is_number(text: str) -> bool:
    """0-9 only: str.isdigit also takes ² and other digits int() refuses."""
    return text.isascii() and text.isdigit()


def _items(text: str) -> Iterable[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]
