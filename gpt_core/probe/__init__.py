"""The probe: capture a run of the model as a Trace of every stage, with interventions
applied by hooks; the stage registry says what the stages are."""

from ._logits import topk_rows
from .capture import backward_step, capture
from .interventions import ABLATION_MODES, Interventions
from .sections import SECTIONS, Section, build_sections
from .stage_spec import operation
from .stages import STAGES, grad_key, stage_key
from .trace import DEFAULT_TOP_K, BackwardInfo, ParamGrad, Stage, Trace

__all__ = [
    "ABLATION_MODES",
    "DEFAULT_TOP_K",
    "SECTIONS",
    "STAGES",
    "BackwardInfo",
    "Interventions",
    "ParamGrad",
    "Section",
    "Stage",
    "Trace",
    "backward_step",
    "build_sections",
    "capture",
    "grad_key",
    "operation",
    "stage_key",
    "topk_rows",
]
