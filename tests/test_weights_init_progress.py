"""A random model's initialisation reports how many parameters are set (a gpt2-medium takes
a minute on a laptop) and stops when cancelled; reporting changes none of the weights."""

import pytest
import torch

from explorer.session.session import Session
from gpt_core import Cancelled, GPTConfig, load_model
from gpt_core.weights import random_model
from tests.conftest import GUI_TIMEOUT_MS

CFG = GPTConfig.preset("tiny")


def test_progress_counts_every_parameter_and_changes_no_weight():
    heard = []
    model = random_model(CFG, seed=3, progress=lambda f, m: heard.append((f, m)))
    plain = random_model(CFG, seed=3)
    total = sum(p.numel() for p in model.parameters())
    fractions = [f for f, _ in heard]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 3
    assert heard[-1][1].endswith(f"{total:,} of {total:,} parameters")
    for (name, a), b in zip(model.state_dict().items(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_cancel_stops_the_initialisation():
    asked = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(Cancelled):
        load_model(None, CFG, seed=0, cancel=cancel)


def test_the_window_hears_determinate_progress_while_a_random_model_loads(qtbot):
    session = Session()
    heard = []
    session.progress.connect(lambda fraction, message: heard.append((fraction, message)))
    try:
        with qtbot.waitSignal(session.modelChanged, timeout=GUI_TIMEOUT_MS):
            session.load_weights(None, "tiny", seed=1)
        counted = [f for f, m in heard if f is not None and "parameters" in m]
        assert counted and counted[-1] == 1.0
    finally:
        session.shut_down(GUI_TIMEOUT_MS)
