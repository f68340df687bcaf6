"""An induction circuit built by hand in a two-block model: block 0's head 0 copies the
previous token into the stream, block 1's head 0 looks for the position whose previous
token is the current one, i.e. the token after the previous occurrence. The induction
test holds its scores to what the heads are; the screenshot gallery shows its views."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from gpt_core import GPTConfig, GPTModel

E = 256  # residual width: token one-hots in [0, 64), positions in [64, 128), the previous
TOKEN, POSITION, PREVIOUS = 0, 64, 128  # token in [128, 192)
SLOT = 64  # at most this many distinct tokens and positions


def induction_model(tokens: Iterable[int]) -> GPTModel:
    """The circuit for prompts made of `tokens` (at most SLOT distinct ids, each given its
    own one-hot embedding; any other token embeds as zero) and at most SLOT positions."""
    tokens = sorted(set(tokens))
    if len(tokens) > SLOT:
        raise ValueError(f"at most {SLOT} distinct tokens, got {len(tokens)}")
    cfg = GPTConfig(context_length=SLOT, emb_dim=E, n_heads=2, n_layers=2, drop_rate=0.0)
    model = GPTModel(cfg).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.fill_(1.0 if name.endswith(".scale") else 0.0)  # LayerNorms: identity
        for k, token in enumerate(tokens):  # each token its own one-hot
            model.tok_emb.weight[token, TOKEN + k] = 1.0
        for p in range(SLOT):
            model.pos_emb.weight[p, POSITION + p] = 1.0
        previous = model.trf_blocks[0].att  # head 0 = output dims [0, 128)
        for j in range(SLOT - 1):
            previous.W_query.weight[j, POSITION + j + 1] = 2.0  # position t asks for t − 1
            previous.W_key.weight[j, POSITION + j] = 1.0
        for j in range(SLOT):
            previous.W_value.weight[j, TOKEN + j] = 1.0  # ... and reads its token
            previous.out_proj.weight[PREVIOUS + j, j] = 1.0  # into the previous-token slot
        induction = model.trf_blocks[1].att
        for j in range(SLOT):
            induction.W_query.weight[j, TOKEN + j] = 10.0  # my token …
            induction.W_key.weight[j, PREVIOUS + j] = 1.0  # … was your previous token
    return model
