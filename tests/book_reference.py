"""A compact re-statement of the from-scratch book's GPTModel (chapter 4), as an independent
source of book-style state_dicts: the same key names, the persistent `att.mask` buffers, and
its own arithmetic (torch.var, division by the square root), and its dropout modules
(drop_emb, att.dropout on the weights, drop_shortcut twice per block) for training mode."""

import torch
from torch import nn


class BookLayerNorm(nn.Module):
    def __init__(self, emb_dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift


class BookGELU(nn.Module):
    def forward(self, x):
        return (
            0.5
            * x
            * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * x**3)))
        )


class BookMHA(nn.Module):
    def __init__(self, d, context_length, dropout, heads, qkv_bias):
        super().__init__()
        self.heads, self.head_dim, self.d = heads, d // heads, d
        self.W_query = nn.Linear(d, d, bias=qkv_bias)
        self.W_key = nn.Linear(d, d, bias=qkv_bias)
        self.W_value = nn.Linear(d, d, bias=qkv_bias)
        self.out_proj = nn.Linear(d, d)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer(
            "mask", torch.triu(torch.ones(context_length, context_length), diagonal=1)
        )

    def forward(self, x):
        b, t, _ = x.shape
        q = self.W_query(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.W_key(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.W_value(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        scores = q @ k.transpose(2, 3)
        scores.masked_fill_(self.mask.bool()[:t, :t], -torch.inf)
        w = self.dropout(torch.softmax(scores / k.shape[-1] ** 0.5, dim=-1))
        return self.out_proj((w @ v).transpose(1, 2).contiguous().view(b, t, self.d))


class BookBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["emb_dim"]
        self.att = BookMHA(
            d, cfg["context_length"], cfg["drop_rate"], cfg["n_heads"], cfg["qkv_bias"]
        )
        self.ff = nn.Module()
        self.ff.layers = nn.Sequential(nn.Linear(d, 4 * d), BookGELU(), nn.Linear(4 * d, d))
        self.norm1, self.norm2 = BookLayerNorm(d), BookLayerNorm(d)
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        return x + self.drop_shortcut(self.ff.layers(self.norm2(x)))


class BookGPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[BookBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = BookLayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, idx):
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1], device=idx.device))
        return self.out_head(self.final_norm(self.trf_blocks(self.drop_emb(x))))


def book_model(cfg_dict, seed=0):
    torch.manual_seed(seed)
    model = BookGPTModel(cfg_dict).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("scale"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith(("bias", "shift")):
                p.copy_(0.02 * torch.randn_like(p))
    return model
