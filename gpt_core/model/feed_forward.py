"""The position-wise feed-forward network: emb -> 4*emb -> GELU -> emb."""

from torch import Tensor, nn

from .gelu import GELU


class FeedForward(nn.Module):
    def __init__(self, emb_dim: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(emb_dim, 4 * emb_dim),  # [B, T, 4*emb], pre-GELU
            GELU(),
            nn.Linear(4 * emb_dim, emb_dim),  # [B, T, emb]
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
