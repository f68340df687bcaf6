"""Activation patching: where in the network does a prediction come from?

Two prompts of the same length, clean and corrupted, and a metric read at one position;
each cell of a sweep is one run with one activation taken from the other prompt's run.
experiment.py runs it (`patch()`), sweeps.py is the table of sweeps, result.py what it
measures and finds, logit_attribution.py the direct logit attribution of the clean run.
"""

from .experiment import (
    PATCHING_METHODS,
    PatchError,
    default_tokens,
    metric_from_text,
    patch,
)
from .logit_attribution import direct_logit_attribution
from .result import DIRECTIONS, METRICS, PATH_KINDS, Metric, PatchResult, Receiver
from .sweeps import PATH_SWEEP, SWEEPS, Sweep

__all__ = [
    "DIRECTIONS",
    "METRICS",
    "PATCHING_METHODS",
    "PATH_KINDS",
    "PATH_SWEEP",
    "SWEEPS",
    "Metric",
    "PatchError",
    "PatchResult",
    "Receiver",
    "Sweep",
    "default_tokens",
    "direct_logit_attribution",
    "metric_from_text",
    "patch",
]
