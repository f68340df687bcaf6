"""The seed's GPT-2, one small module per concept."""

from .attention import MultiHeadAttention
from .feed_forward import FeedForward
from .gelu import GELU
from .gpt_model import GPTModel, check_token_ids
from .layer_norm import LayerNorm
from .probe_point import ProbePoint
from .transformer_block import TransformerBlock

__all__ = [
    "GELU",
    "FeedForward",
    "GPTModel",
    "LayerNorm",
    "MultiHeadAttention",
    "ProbePoint",
    "TransformerBlock",
    "check_token_ids",
]
