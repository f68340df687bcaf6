"""The stages a person steps through, in data-flow order, and what is selected.

A Step is one place in the architecture navigator with one view: the embeddings, each
block's six steps (norm1, attention, the residual add, norm2, feed-forward, the second
residual add), the final norm and the output head. Next/Previous walk this list.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gpt_core import GPTConfig

# kind -> (title, trace keys the view shows; "{i}" is the block)
BLOCK_STEPS = {
    "ln1": ("LayerNorm 1", ("blocks/{i}/ln1/mean", "blocks/{i}/ln1/var", "blocks/{i}/ln1/out")),
    "attention": (
        "Attention",
        ("blocks/{i}/attn/weights", "blocks/{i}/attn/context", "blocks/{i}/attn/out"),
    ),
    "resid_mid": ("+ residual", ("blocks/{i}/resid_mid",)),
    "ln2": ("LayerNorm 2", ("blocks/{i}/ln2/mean", "blocks/{i}/ln2/var", "blocks/{i}/ln2/out")),
    "ff": (
        "Feed-forward (GELU)",
        ("blocks/{i}/ff/pre_gelu", "blocks/{i}/ff/gelu", "blocks/{i}/ff/out"),
    ),
    "block_out": ("+ residual", ("blocks/{i}/out",)),
}


@dataclass(frozen=True)
class Step:
    kind: str  # "embeddings", one of BLOCK_STEPS, "final_norm" or "output"
    layer: int | None  # block index for block steps
    title: str  # what the navigator and the view's header say
    keys: tuple[str, ...]  # the trace keys this step's view draws

    @property
    def main_key(self) -> str:
        """The stage whose shape the navigator shows."""
        return self.keys[-1]


def build_steps(cfg: GPTConfig) -> list[Step]:
    steps = [
        Step(
            "embeddings",
            None,
            "Embeddings",
            ("embeddings/token", "embeddings/position", "embeddings/sum"),
        )
    ]
    for i in range(cfg.n_layers):
        for kind, (title, keys) in BLOCK_STEPS.items():
            steps.append(Step(kind, i, f"Block {i} · {title}", tuple(k.format(i=i) for k in keys)))
    steps.append(
        Step(
            "final_norm",
            None,
            "Final LayerNorm",
            ("final_norm/mean", "final_norm/var", "final_norm/out"),
        )
    )
    steps.append(
        Step(
            "output",
            None,
            "Output head · next token",
            ("logits/topk_ids", "logits/topk_probs", "logits/last"),
        )
    )
    return steps


@dataclass(frozen=True)
class Selection:
    step: int = 0  # index into the step list
    layer: int = 0  # the block the attention views show (follows block steps)
    head: int = 0  # the attention head shown large
    position: int | None = None  # selected token position; None: the last

    def with_(self, **changes) -> Selection:
        return replace(self, **changes)
