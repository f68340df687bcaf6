"""Occlusion with prefix reuse (the run hiding token t computes positions t … only, over
the unhidden run's keys and values) against one full run of the model per hidden token,
with heads switched off and a block skipped, from the zero vector and from a token."""

import pytest
import torch

from gpt_core import Interventions
from gpt_core.analysis.input_attribution import Explained, attribute
from gpt_core.probe.hook_points import hooked
from tests.patching_reference import sharpened
from tests.probe_helpers import probe_model

IDS = [464, 3797, 3332, 319, 262, 2603, 13, 3244, 340, 3114, 379]


@pytest.fixture(scope="module")
def model():
    return sharpened(probe_model())


def _full_run(model, ids, explained, switches, hidden, baseline):
    """f of one plain forward with token `hidden`'s embedding replaced by `baseline`; the
    run stops at the explained position, as attribute's do (which matters to a head
    switched off by its mean over the positions)."""

    def hide(module, args, out):
        out = out.clone()
        out[:, hidden] = baseline
        return out

    handle = model.tok_emb.register_forward_hook(hide)
    try:
        with torch.no_grad(), hooked(model, switches):
            logits = model(torch.tensor([ids[: explained.position + 1]]))[0, -1]
    finally:
        handle.remove()
    foil = 0.0 if explained.foil is None else logits[explained.foil]
    return float(logits[explained.target] - foil)


@pytest.mark.parametrize(
    ("switches", "baseline_token"),
    [
        (Interventions(), None),
        (Interventions.parse("0.1,2.3", "1"), 50256),
        (Interventions.parse("1.0,1.2", "2"), None),  # the last block skipped
        (Interventions.parse("0.1,2.3", "").with_mode("mean"), 50256),  # not causal: full runs
    ],
)
def test_occlusion_equals_one_full_run_per_hidden_token(model, switches, baseline_token):
    explained = Explained(target=13, foil=11, position=len(IDS) - 2)
    result = attribute(model, IDS, explained, ("occlusion",), baseline_token=baseline_token,
                       interventions=switches)  # fmt: skip
    with torch.no_grad():
        embeddings = model.tok_emb.weight
        baseline = 0 if baseline_token is None else embeddings[baseline_token]
    unhidden = _full_run(model, IDS, explained, switches, [], baseline)
    expected = [
        unhidden - _full_run(model, IDS, explained, switches, [t], baseline)
        for t in range(explained.position + 1)
    ]
    scores = result.scores["occlusion"]
    assert scores[: explained.position + 1] == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert scores[explained.position + 1 :].tolist() == [0.0]
    assert max(map(abs, expected)) > 1e-2  # the scores mean something
