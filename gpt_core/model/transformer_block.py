"""A pre-norm transformer block: attention and feed-forward, each added to the residual."""

from torch import Tensor, nn

from .attention import MultiHeadAttention
from .config import GPTConfig
from .feed_forward import FeedForward
from .layer_norm import LayerNorm
from .probe_point import ProbePoint


class TransformerBlock(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.att = MultiHeadAttention(
            d_in=cfg.emb_dim,
            d_out=cfg.emb_dim,
            num_heads=cfg.n_heads,
            dropout=cfg.drop_rate,
            qkv_bias=cfg.qkv_bias,
        )
        self.ff = FeedForward(cfg.emb_dim)
        self.norm1 = LayerNorm(cfg.emb_dim)
        self.norm2 = LayerNorm(cfg.emb_dim)
        self.drop_shortcut = nn.Dropout(cfg.drop_rate)
        self.resid_mid_point = ProbePoint()  # residual stream between attention and FF

    def forward(self, x: Tensor) -> Tensor:  # x: [B, T, emb]
        shortcut = x
        x = self.drop_shortcut(self.att(self.norm1(x)))  # [B, T, emb]
        x = self.resid_mid_point(x + shortcut)

        shortcut = x
        x = self.drop_shortcut(self.ff(self.norm2(x)))  # [B, T, emb]
        return x + shortcut
