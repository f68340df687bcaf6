"""GELU, the tanh approximation GPT-2 was trained with."""

import math

import torch
from torch import Tensor, nn

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class GELU(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * x * (1.0 + torch.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * torch.pow(x, 3))))
