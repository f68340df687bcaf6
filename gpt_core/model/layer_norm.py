"""LayerNorm over the embedding dimension: eps 1e-5, biased variance, learned scale/shift."""

import torch
from torch import Tensor, nn

from .probe_point import ProbePoint

EPS = 1e-5  # added to the variance before the square root, as GPT-2 does


class LayerNorm(nn.Module):
    def __init__(self, emb_dim: int, eps: float = EPS):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))
        self.mean_point = ProbePoint()  # per-token mean, [B, T, 1]
        self.var_point = ProbePoint()  # per-token biased variance, [B, T, 1]

    def forward(self, x: Tensor) -> Tensor:  # x: [B, T, emb]
        mean = self.mean_point(x.mean(dim=-1, keepdim=True))  # [B, T, 1]
        centered = x - mean  # [B, T, emb]
        # mean of squares of the centred values: the biased variance, several times
        # cheaper than torch.var on CPU.
        var = self.var_point((centered * centered).mean(dim=-1, keepdim=True))  # [B, T, 1]
        norm_x = centered * torch.rsqrt(var + self.eps)  # [B, T, emb]
        return self.scale * norm_x + self.shift
