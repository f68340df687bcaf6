"""gpt_core: GPT-2 and the instruments to look inside it. No Qt here (see tests/test_layers.py)."""

from .compare import Comparison, compare
from .config import PRESETS, GPTConfig
from .devices import available_devices, cuda_available, resolve_device
from .errors import Cancelled, DeviceError, GPTCoreError, PromptError, WeightsError
from .generation import generate, pick_next_token
from .interventions import ABLATION_MODES, Interventions
from .lens import LogitLens, logit_lens
from .memory import keep_freed_memory
from .model import GPTModel
from .parameters import ParameterCount, count_parameters
from .probe import backward_step, capture
from .tokenizer import Tokenizer, get_tokenizer
from .trace import BackwardInfo, ParamGrad, Stage, Trace, TraceError
from .weights import load_model, save_model

__all__ = [
    "ABLATION_MODES",
    "PRESETS",
    "BackwardInfo",
    "Comparison",
    "Interventions",
    "LogitLens",
    "ParamGrad",
    "Stage",
    "Trace",
    "TraceError",
    "backward_step",
    "capture",
    "compare",
    "Cancelled",
    "DeviceError",
    "GPTConfig",
    "GPTCoreError",
    "GPTModel",
    "ParameterCount",
    "PromptError",
    "Tokenizer",
    "WeightsError",
    "available_devices",
    "count_parameters",
    "cuda_available",
    "generate",
    "get_tokenizer",
    "keep_freed_memory",
    "load_model",
    "logit_lens",
    "pick_next_token",
    "resolve_device",
    "save_model",
]
