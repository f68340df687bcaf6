"""What can be read off runs: the effect of interventions, the logit lens, per-head
attention statistics, head types, one attention pair step by step and the source lines of
each step, a lens at every sub-layer, input attributions (in .input_attribution), embedding
projections, parameter counts."""

from .attention_pair import AttentionPair, attention_pair, default_key, out_proj_arrays
from .attention_source import ATTENTION_STEPS, SourceLine, attention_source_lines
from .compare import Comparison, compare
from .head_stats import HEAD_METRICS, head_metrics, head_summary
from .head_types import (
    HEAD_TYPES,
    PROMPT_HEAD_SCORES,
    REPEAT_LENGTH,
    head_type_scores,
    prompt_head_scores,
    repeat_pairs,
    repeat_scores,
    repeated_sequence_ids,
)
from .lens import LogitLens, logit_lens
from .parameters import ParameterCount, count_parameters
from .projection import Projection, pca_2d
from .sublayer_lens import SublayerLens, sublayer_lens

__all__ = [
    "ATTENTION_STEPS",
    "HEAD_METRICS",
    "HEAD_TYPES",
    "PROMPT_HEAD_SCORES",
    "REPEAT_LENGTH",
    "AttentionPair",
    "Comparison",
    "LogitLens",
    "ParameterCount",
    "Projection",
    "SourceLine",
    "SublayerLens",
    "attention_pair",
    "default_key",
    "attention_source_lines",
    "compare",
    "count_parameters",
    "head_metrics",
    "head_summary",
    "head_type_scores",
    "logit_lens",
    "out_proj_arrays",
    "pca_2d",
    "prompt_head_scores",
    "repeat_pairs",
    "repeated_sequence_ids",
    "repeat_scores",
    "sublayer_lens",
]
