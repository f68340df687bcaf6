"""gpt_core: GPT-2 and the instruments to look inside it. No Qt here (see tests/test_layers.py).

- model/: the book's GPT-2 with its config, tokenizer and generation loop, the sampling distribution
- weights/: loading and saving weights from every supported source
- probe/: capture runs as Traces (the stage registry, hooks, interventions)
- analysis/: what can be read off runs (compare, logit lens, head statistics, counts)
- util/: atomic files, devices, memory
"""

from .analysis import (
    Comparison,
    LogitLens,
    ParameterCount,
    compare,
    count_parameters,
    head_metrics,
    head_summary,
    logit_lens,
)
from .errors import (
    Cancelled,
    DeviceError,
    ExportError,
    GPTCoreError,
    PromptError,
    TraceError,
    WeightsError,
)
from .model import (
    PRESETS,
    GPTConfig,
    GPTModel,
    SamplingDistribution,
    Tokenizer,
    generate,
    get_tokenizer,
    next_token_distribution,
    pick_next_token,
)
from .probe import (
    ABLATION_MODES,
    BackwardInfo,
    Interventions,
    ParamGrad,
    Stage,
    Trace,
    backward_step,
    capture,
    stage_key,
)
from .util.devices import available_devices, cuda_available, resolve_device
from .util.memory import keep_freed_memory
from .weights import load_model, save_model

__all__ = [
    "ABLATION_MODES",
    "PRESETS",
    "BackwardInfo",
    "Cancelled",
    "Comparison",
    "DeviceError",
    "ExportError",
    "GPTConfig",
    "GPTCoreError",
    "GPTModel",
    "Interventions",
    "LogitLens",
    "ParamGrad",
    "ParameterCount",
    "PromptError",
    "SamplingDistribution",
    "Stage",
    "Tokenizer",
    "Trace",
    "TraceError",
    "WeightsError",
    "available_devices",
    "backward_step",
    "capture",
    "compare",
    "count_parameters",
    "cuda_available",
    "generate",
    "get_tokenizer",
    "head_metrics",
    "head_summary",
    "keep_freed_memory",
    "load_model",
    "logit_lens",
    "next_token_distribution",
    "pick_next_token",
    "resolve_device",
    "save_model",
    "stage_key",
]
