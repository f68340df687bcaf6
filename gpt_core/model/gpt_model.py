"""GPT-2: token + positional embeddings, a stack of transformer blocks, a final norm and
a linear head onto the vocabulary. Names follow the from-scratch book's GPTModel, so its
state_dicts load with no renaming."""

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..errors import PromptError
from .config import GPTConfig
from .layer_norm import LayerNorm
from .transformer_block import TransformerBlock


class GPTModel(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.emb_dim)
        self.drop_emb = nn.Dropout(cfg.drop_rate)
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.final_norm = LayerNorm(cfg.emb_dim)
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)

    def forward(self, in_idx: Tensor) -> Tensor:  # in_idx: [B, T]
        check_token_ids(in_idx, self.cfg)
        _, seq_len = in_idx.shape
        tok_embeds = self.tok_emb(in_idx)  # [B, T, emb]
        pos_embeds = self.pos_emb(torch.arange(seq_len, device=in_idx.device))  # [T, emb]
        x = self.drop_emb(tok_embeds + pos_embeds)  # [B, T, emb]
        x = self.trf_blocks(x)  # [B, T, emb]
        x = self.final_norm(x)  # [B, T, emb]
        return self.out_head(x)  # [B, T, vocab]


def check_token_ids(in_idx: Tensor, cfg: GPTConfig) -> None:
    """Raise PromptError, with a message a person can act on, for ids the model cannot take."""
    if in_idx.dim() != 2:
        raise PromptError(f"token ids must have shape [batch, tokens], got {list(in_idx.shape)}")
    seq_len = in_idx.shape[1]
    if seq_len == 0:
        raise PromptError("the prompt is empty; type some text first")
    if seq_len > cfg.context_length:
        raise PromptError(
            f"prompt has {seq_len:,} tokens; this model sees at most {cfg.context_length:,}"
        )
    if in_idx.dtype not in (torch.int64, torch.int32):
        raise PromptError(f"token ids must be integers, got {in_idx.dtype}")
    check_in_vocabulary((int(in_idx.min()), int(in_idx.max())), cfg)


def check_in_vocabulary(token_ids: Iterable[int | None], cfg: GPTConfig) -> None:
    """PromptError, the one message for it, for a token id (a prompt's, a target's, a
    baseline's) the model has no row for; None stands for "no token" and passes."""
    for token in token_ids:
        if token is not None and not 0 <= token < cfg.vocab_size:
            raise PromptError(
                f"token id {token} is outside the vocabulary (0..{cfg.vocab_size - 1})"
            )
