"""The source lines of the model's attention that compute each step, read from the code
itself at run time, so that a view can show the line beside the numbers it made.

Each step names a few fragments of code; every line of MultiHeadAttention holding one of
them (outside its comment) belongs to the step. A renamed line that no fragment finds any
more raises LookupError, and the tests call attention_source_lines() so that it fails
there first.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from ..model.attention import MultiHeadAttention

# (step, the fragments of code that compute it), in the order the forward runs them.
_STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("project queries", ("self.W_query(x)",)),
    ("project keys", ("self.W_key(x)",)),
    ("project values", ("self.W_value(x)",)),
    (
        "split heads",
        (
            "split = (",
            ".view(split)",
            "queries.transpose(1, 2)",
            "keys.transpose(1, 2)",
            "values.transpose(1, 2)",
        ),
    ),
    ("scores", ("@ keys.transpose(2, 3)",)),
    ("scale", ("self.head_dim**-0.5",)),
    ("mask", ("future = ", ".masked_fill_(future")),
    ("softmax", ("torch.softmax(attn_scores",)),
    ("weights @ values", ("attn_weights @ values",)),
    ("concat heads", ("context = context.flatten(2)",)),
    ("out_proj", ("self.out_proj(context)",)),
)
ATTENTION_STEPS = tuple(step for step, _ in _STEPS)


@dataclass(frozen=True)
class SourceLine:
    number: int  # 1-based, in gpt_core/model/attention.py
    text: str  # the line as written, indentation included


def attention_source_lines() -> dict[str, tuple[SourceLine, ...]]:
    """For each step of ATTENTION_STEPS, in order, the lines of attention.py computing it."""
    lines, first = inspect.getsourcelines(MultiHeadAttention)
    numbered = [(first + i, line.rstrip("\n")) for i, line in enumerate(lines)]
    found = {}
    for step, fragments in _STEPS:
        for fragment in fragments:
            if not any(fragment in _code(text) for _, text in numbered):
                raise LookupError(
                    f"no line of MultiHeadAttention holds {fragment!r} (the step {step!r}): "
                    "update attention_source.py to the code"
                )
        found[step] = tuple(
            SourceLine(number, text)
            for number, text in numbered
            if any(fragment in _code(text) for fragment in fragments)
        )
    return found


def _code(line: str) -> str:
    """The line without its comment (no line of the attention holds '#' in a string)."""
    return line.split("#", 1)[0]
