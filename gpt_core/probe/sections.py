"""The sections of the model a person steps through: each groups the stages one view draws
("Block 3 · LayerNorm 1"), with its navigator label and the modules whose parameters it
counts. Together with stages.py, the registry the app reads."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.config import GPTConfig
from .stages import LOGITS, STAGES, in_flow_order, stage_key


@dataclass(frozen=True)
class SectionSpec:
    name: str  # "ln1", "attention", ...
    title: str  # header of its view; block sections get "Block {layer} · " in front
    tree_label: str  # its node in the architecture tree; "{heads}" is the head count
    view: str  # which view draws it
    per_block: bool  # one per block, or once in the model
    parameters: tuple[str, ...]  # modules whose parameters it counts; "{layer}" is the block
    shape_stage: str | None  # the stage whose shape the tree shows; None: the token ids [T]
    gradient_stage: str  # the stage whose gradient the backward view shows for it
    extra_keys: tuple[str, ...] = ()  # trace keys it shows that are not stages
    # For a section with no stages of its own (the tokens: text, not arrays), what its
    # header says in their place.
    formula: str = ""
    explanation: str = ""


_SECTIONS: tuple[SectionSpec, ...] = (
    # The prompt's text becoming ids (gpt_core.model.bpe): before the model, so no stage; its
    # view reads the prompt and the trace's ids. The gradient stops at the ids' embeddings.
    SectionSpec(
        "tokens",
        "Tokens, from text",
        "text → tokens (BPE)",
        "tokens",
        False,
        (),
        None,
        "embeddings/token",
        formula="text → pieces → UTF-8 bytes → one character per byte → merges, lowest rank "
        "first → ids",
        explanation="GPT-2 never sees letters. Its pre-tokenizer cuts the text into pieces "
        "(a word with its leading space, a number, a run of punctuation or of whitespace); "
        "each piece becomes its UTF-8 bytes, written one character per byte (the files write "
        "a space as Ġ; this app shows ␣). Then the pair of neighbouring symbols that comes "
        "first in the 50,000 merges of vocab.bpe is joined, again and again, until no "
        "neighbouring pair is in the list. Each symbol left is a token; encoder.json gives its "
        "id.",
    ),
    SectionSpec(
        "embeddings",
        "Embeddings",
        "Embeddings (token + position)",
        "embeddings",
        False,
        ("tok_emb", "pos_emb"),
        "embeddings/sum",
        "embeddings/sum",
    ),
    SectionSpec(
        "ln1",
        "LayerNorm 1",
        "norm1 · LayerNorm",
        "layernorm",
        True,
        ("trf_blocks.{layer}.norm1",),
        "ln1/out",
        "ln1/out",
    ),
    SectionSpec(
        "attention",
        "Attention",
        "attention ({heads} heads)",
        "attention",
        True,
        ("trf_blocks.{layer}.att",),
        "attn/weights",
        "attn/weights",
    ),
    # One (query, key) pair of one head followed through the attention, on the run's own
    # numbers. Its parameters are the attention's, counted there once.
    SectionSpec(
        "attention_steps",
        "Attention, step by step",
        "↳ q·k/√d → softmax",
        "attention_steps",
        True,
        (),
        "attn/scores",
        "attn/weights",
    ),
    SectionSpec(
        "resid_mid", "+ residual", "+ residual", "residual", True, (), "resid_mid", "resid_mid"
    ),
    SectionSpec(
        "ln2",
        "LayerNorm 2",
        "norm2 · LayerNorm",
        "layernorm",
        True,
        ("trf_blocks.{layer}.norm2",),
        "ln2/out",
        "ln2/out",
    ),
    SectionSpec(
        "ff",
        "Feed-forward (GELU)",
        "feed-forward · GELU",
        "feedforward",
        True,
        ("trf_blocks.{layer}.ff",),
        "ff/out",
        "ff/out",
    ),
    SectionSpec("block_out", "+ residual", "+ residual", "residual", True, (), "out", "out"),
    SectionSpec(
        "final_norm",
        "Final LayerNorm",
        "final norm · LayerNorm",
        "layernorm",
        False,
        ("final_norm",),
        "final_norm/out",
        "final_norm/out",
    ),
    SectionSpec(
        "output",
        "Output head · next token",
        "output head → next token",
        "output",
        False,
        ("out_head",),
        "logits/topk_ids",
        "final_norm/out",
        extra_keys=(LOGITS, "logits/topk_probs", "logits/last"),
    ),
)

SECTIONS: dict[str, SectionSpec] = {spec.name: spec for spec in _SECTIONS}


@dataclass(frozen=True)
class Section:
    """One section of a model with a given config: a navigator entry and a view."""

    spec: SectionSpec
    layer: int | None  # block index for block sections

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        if self.layer is None:
            return self.spec.title
        return f"Block {self.layer} · {self.spec.title}"

    def key(self, role: str) -> str:
        """The trace key of this section's stage with `role` ("mean", "out", ...)."""
        for spec in STAGES.values():
            if spec.section == self.spec.name and spec.role == role:
                return stage_key(spec.name, self.layer)
        raise KeyError(f"section {self.spec.name!r} has no stage {role!r}")

    @property
    def keys(self) -> tuple[str, ...]:
        """Every trace key its view draws."""
        own = [
            stage_key(s.name, self.layer) for s in STAGES.values() if s.section == self.spec.name
        ]
        return (*own, *self.spec.extra_keys)

    @property
    def shape_key(self) -> str | None:
        if self.spec.shape_stage is None:
            return None
        return stage_key(self.spec.shape_stage, self.layer)

    @property
    def gradient_key(self) -> str:
        spec = STAGES[self.spec.gradient_stage]
        return stage_key(spec.name, self.layer if spec.per_block else None)

    def parameter_modules(self) -> tuple[str, ...]:
        return tuple(m.format(layer=self.layer) for m in self.spec.parameters)


def build_sections(cfg: GPTConfig) -> tuple[Section, ...]:
    """Every section of a model with this config, in data-flow order."""
    return tuple(Section(s, layer) for s, layer in in_flow_order(_SECTIONS, cfg.n_layers))
