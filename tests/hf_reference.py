"""An independent reference: transformers' GPT-2 built locally from a config, random weights
in every tensor (biases and LayerNorm parameters too, so a transposed or swapped tensor
shows), saved as a Hugging Face folder for load_model to read."""

from __future__ import annotations

from pathlib import Path

import torch


def build_hf_gpt2(n_embd=64, n_layer=3, n_head=4, n_positions=64, seed=0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=50257,
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        attn_implementation="eager",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.02 * torch.randn_like(p))
    return model


def save_hf_folder(model, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder
