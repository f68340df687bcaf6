"""The induction circuit built by hand (tests/induction_model.py): its induction score
on the repeated sequence must be near 1, and the other scores must say what the heads are."""

import numpy as np
import pytest

from gpt_core.analysis import head_type_scores, repeated_sequence_ids
from tests.induction_model import induction_model as build

LENGTH, SEED = 20, 3


@pytest.fixture(scope="module")
def induction_model():
    return build(repeated_sequence_ids(LENGTH, SEED, 50257))


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
