"""What can be read off runs: the effect of interventions, the logit lens, per-head
attention statistics, head types, a lens at every sub-layer, input attributions (in
.input_attribution), embedding projections, parameter counts."""

from .compare import Comparison, compare
from .head_stats import HEAD_METRICS, head_metrics, head_summary
from .head_types import HEAD_TYPES, REPEAT_LENGTH, head_type_scores, probe_ids, repeat_scores
from .lens import LogitLens, logit_lens
from .parameters import ParameterCount, count_parameters
from .projection import Projection, pca_2d
from .sublayer_lens import SublayerLens, sublayer_lens

__all__ = [
    "HEAD_METRICS",
    "HEAD_TYPES",
    "REPEAT_LENGTH",
    "Comparison",
    "LogitLens",
    "ParameterCount",
    "Projection",
    "SublayerLens",
    "compare",
    "count_parameters",
    "head_metrics",
    "head_summary",
    "head_type_scores",
    "logit_lens",
    "pca_2d",
    "probe_ids",
    "repeat_scores",
    "sublayer_lens",
]
