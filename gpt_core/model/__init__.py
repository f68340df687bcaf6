"""The seed's GPT-2, one small module per concept, with its config, tokenizer and the text
generation loop and its sampling distribution."""

from .attention import MultiHeadAttention
from .config import PRESETS, GPTConfig
from .feed_forward import FeedForward
from .gelu import GELU
from .generation import generate, pick_next_token
from .gpt_model import GPTModel, check_in_vocabulary, check_token_ids
from .layer_norm import LayerNorm
from .probe_point import ProbePoint
from .sampling import SamplingDistribution, next_token_distribution
from .tokenizer import Tokenizer, get_tokenizer
from .transformer_block import TransformerBlock

__all__ = [
    "GELU",
    "PRESETS",
    "FeedForward",
    "GPTConfig",
    "GPTModel",
    "LayerNorm",
    "MultiHeadAttention",
    "ProbePoint",
    "SamplingDistribution",
    "Tokenizer",
    "TransformerBlock",
    "check_in_vocabulary",
    "check_token_ids",
    "generate",
    "get_tokenizer",
    "next_token_distribution",
    "pick_next_token",
]
