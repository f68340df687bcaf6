"""An induction circuit built by hand in a two-block model: block 0's head 0 copies the
previous token into the stream, block 1's head 0 looks for the position whose previous
token is the current one, i.e. the token after the previous occurrence. Its induction score
on the repeated sequence must be near 1, and the other scores must say what the heads are."""

import numpy as np
import pytest
import torch

from gpt_core import GPTConfig, GPTModel
from gpt_core.analysis import head_type_scores, repeated_sequence_ids

LENGTH, SEED = 20, 3
E = 256  # residual width: token one-hots in [0, 64), positions in [64, 128), the previous
TOKEN, POSITION, PREVIOUS = 0, 64, 128  # token in [128, 192)
SLOT = 64


@pytest.fixture(scope="module")
def induction_model() -> GPTModel:
    cfg = GPTConfig(context_length=SLOT, emb_dim=E, n_heads=2, n_layers=2, drop_rate=0.0)
    model = GPTModel(cfg).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.fill_(1.0 if name.endswith(".scale") else 0.0)  # LayerNorms: identity
        tokens = sorted(set(repeated_sequence_ids(LENGTH, SEED, cfg.vocab_size)))
        for k, token in enumerate(tokens):  # each probe token its own one-hot
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


def test_the_hand_built_induction_head_scores_near_one(induction_model):
    scores = head_type_scores(induction_model, length=LENGTH, seed=SEED)
    assert scores["ids"].tolist() == repeated_sequence_ids(LENGTH, SEED, 50257)
    assert scores["induction"][1, 0] > 0.95
    assert scores["duplicate_token"][1, 0] < 0.05
    assert scores["previous"][0, 0] > 0.95  # block 0's head 0 is a previous-token head
    assert scores["induction"][0, 0] < 0.05
    uniform = np.mean([1 / (t + 1) for t in range(LENGTH + 1, 2 * LENGTH + 1)])
    for layer in (0, 1):  # the heads with no weights attend evenly
        assert scores["induction"][layer, 1] == pytest.approx(uniform, rel=1e-4)


def test_the_induction_head_scores_near_one_on_a_prompt_of_its_own(induction_model):
    """The probe is not the only place an induction head shows: on a person's own prompt
    that repeats itself (other tokens, another length) the prompt's score says so too."""
    from gpt_core import capture
    from gpt_core.analysis import prompt_head_scores

    probe_tokens = repeated_sequence_ids(LENGTH, SEED, 50257)[1 : LENGTH + 1]
    own = probe_tokens[5:12][::-1]  # 7 of the model's tokens, in another order
    scores = prompt_head_scores(capture(induction_model, [*own, *own, *own[:3]]))
    assert scores["prompt_induction"][1, 0] > 0.9
    assert scores["prompt_duplicate_token"][1, 0] < 0.1
