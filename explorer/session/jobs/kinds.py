"""Every kind of job the session runs, with what the window says of it; a new job module
adds its kind here. A failed job's message for the person."""

from __future__ import annotations

from dataclasses import dataclass

from gpt_core import GPTCoreError


@dataclass(frozen=True)
class JobKind:
    label: str  # what the status bar says while it runs
    cancellable: bool  # the window offers Cancel while it runs


JOB_KINDS = {
    "load": JobKind("Loading the model…", True),
    "device": JobKind("Moving the model…", False),
    "run": JobKind("Running the model…", True),
    "backward": JobKind("Backward step…", True),
    "logit_lens": JobKind("Reading the logit lens…", False),
    "patch": JobKind("Patching…", True),
    "sublayer_lens": JobKind("Reading the lens at every sub-layer…", True),
    "attribution": JobKind("Attributing…", True),
    "repeated_sequence": JobKind("Running the repeated-sequence test…", False),
    "weight_matrices": JobKind("Reading weight matrices…", False),
    "out_proj": JobKind("Reading out_proj's weights…", False),
    "sae_load": JobKind("Loading the SAE…", True),
    "features": JobKind("Reading the SAE's features…", False),
    "feature_card": JobKind("Reading a feature's card…", False),
    "feature_scan": JobKind("Scanning the corpus…", True),
}


def reason(exc: BaseException) -> str:
    """A message for the person: ours are written for them; others keep their type."""
    if isinstance(exc, (GPTCoreError, ValueError, OSError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
