"""The seams between the session and its jobs: one signal per part of the state, what is in
flight known to the runner alone, the model serial and the unswitched baseline kept by the
state, and the selected (query, key) pair."""

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from explorer.session.session import Session, signal_name
from explorer.session.worker import Runner
from explorer.state import app_state as st
from explorer.state.changes import PARTS, changed_parts
from gpt_core import GPTConfig, Interventions
from gpt_core.analysis import count_parameters
from gpt_core.weights import random_model

CFG = GPTConfig.preset("tiny")


@pytest.fixture(scope="module")
def loaded():
    return st.LoadedModel(CFG, "random", True, count_parameters(random_model(CFG, 0)), {}, 0)


@pytest.fixture
def state(loaded):
    return st.with_model(st.AppState(), loaded)


def _ran(state, ids, interventions=None):
    interventions = interventions or Interventions()
    trace = SimpleNamespace(n_tokens=len(ids), token_ids=np.array(ids))
    baseline = SimpleNamespace(n_tokens=len(ids), token_ids=np.array(ids))
    key = st.RunKey(state.model.serial, state.device, tuple(ids), interventions)
    result = st.RunResult(key, baseline, trace, None, None, 0.0)
    return st.with_result(st.with_interventions(state, interventions), result, "text")


def test_every_part_of_the_state_has_its_own_signal_named_after_it():
    names = {signal_name(part) for part in PARTS}
    assert len(names) == len(PARTS)
    assert signal_name("sublayer_lens") == "sublayerLensChanged"
    for name in names:
        assert hasattr(Session, name), name


def test_a_transition_announces_exactly_the_parts_it_changed(qtbot, session):
    heard = []
    for part in PARTS:
        getattr(session, signal_name(part)).connect(lambda part=part: heard.append(part))
    session.changed.connect(lambda parts: heard.append(parts))
    session.set_prompt("a new prompt")
    assert heard == ["prompt", frozenset({"prompt"})]
    heard.clear()
    session.update(st.with_prompt, "a new prompt")  # no change: nothing said
    assert heard == []


def test_each_load_gets_a_serial_of_its_own(state, loaded):
    again = st.with_model(state, loaded)
    assert state.model.serial == 1 and again.model.serial == 2
    assert again.model.config == loaded.config


def test_the_baseline_is_reused_only_for_the_same_tokens_model_and_device(state):
    ran = _ran(state, [1, 2, 3])
    same = st.RunKey(ran.model.serial, ran.device, (1, 2, 3), Interventions({(0, 1)}))
    assert st.baseline_for(ran, same) is ran.result.baseline
    for other in (
        st.RunKey(ran.model.serial, ran.device, (1, 2, 4), same.interventions),
        st.RunKey(ran.model.serial + 1, ran.device, (1, 2, 3), same.interventions),
        st.RunKey(ran.model.serial, "cuda", (1, 2, 3), same.interventions),
    ):
        assert st.baseline_for(ran, other) is None
    assert st.baseline_for(state, same) is None  # nothing ran yet


def test_a_pair_selects_query_and_key_and_a_new_prompt_forgets_both(state):
    before = _ran(state, [1, 2, 3, 4])
    ran = st.select_pair(before, 2, 1)
    assert (ran.position, ran.key_position) == (2, 1)
    assert changed_parts(before, ran) == {"position", "key"}
    assert changed_parts(ran, st.select_pair(ran, 2, 0)) == {"key"}  # the query stays
    kept = _ran(ran, [1, 2, 3, 4], Interventions({(0, 1)}))  # same prompt, a switch flipped
    assert (kept.position, kept.key_position) == (2, 1)
    other = _ran(ran, [5, 6])
    assert (other.position, other.key_position) == (1, None)


def test_a_key_past_the_prompt_is_its_last_token(state):
    ran = _ran(state, [1, 2, 3])
    assert st.select_pair(ran, 1, 99).key_position == 2
    assert st.select_pair(ran, 1, 2).key_position == 2
    assert ran.key_position is None and st.AppState().key_position is None


def test_the_runner_knows_what_each_job_works_on_until_it_ends_or_is_cancelled(qtbot):
    runner = Runner()
    release = threading.Event()
    runner.submit("run", lambda ctx: release.wait(5), lambda r: None, lambda e, t: None,
                  tag=("trace", 3))  # fmt: skip
    assert runner.in_flight("run") == ("trace", 3) and runner.in_flight("lens") is None
    runner.cancel("run")
    assert runner.in_flight("run") is None and runner.has_job("run")  # still ending
    release.set()
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=5000)
    done = []
    with qtbot.waitSignal(runner.busyChanged, check_params_cb=lambda busy, *_: not busy):
        runner.submit("run", lambda ctx: 1, done.append, lambda e, t: None, tag="next")
    assert done == [1] and runner.in_flight("run") is None
