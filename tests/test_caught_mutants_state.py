"""The app state's transitions, for the one-line bugs the older tests let through: each test
names what a person would see go wrong (a position past the prompt, a foil from another
vocabulary, the lens of a run that is gone). No model runs: the traces are stand-ins that
have only what the transitions read."""

import numpy as np
import pytest

from explorer.state import analysis as an
from explorer.state import app_state as st
from gpt_core import GPTConfig, Interventions
from gpt_core.analysis import LogitLens, SublayerLens, count_parameters
from gpt_core.weights import random_model

CFG = GPTConfig.preset("tiny")  # 2 blocks, 4 heads
LABELS = ("embeddings", "B0 mid", "B0 out", "B1 mid", "B1 out")  # the lens points, 2L + 1


class _Trace:
    """What the state transitions read of a trace: its length. Each one is a new run."""

    def __init__(self, n_tokens):
        self.n_tokens = n_tokens


class _Gradients:
    def __init__(self, steps):
        self.backward = type("Info", (), {"order": tuple(("k", 1.0) for _ in range(steps))})()


@pytest.fixture(scope="module")
def counts():
    return count_parameters(random_model(CFG, seed=0))


def _model(counts, serial):
    return st.LoadedModel(CFG, f"model {serial}", True, counts, {}, serial=serial)


@pytest.fixture
def state(counts):
    return st.with_model(st.AppState(), _model(counts, 1))


def _ran(state, ids, text="a"):
    """`state` after a run of `ids` (a new trace, even for the same ids)."""
    key = st.RunKey(state.model.serial, state.device, tuple(ids), state.interventions)
    trace = _Trace(len(ids))
    return st.with_result(state, st.RunResult(key, trace, trace, None, {}, 0.0), text)


def _lens(position):
    ids, probs = np.zeros((3, 5), np.int64), np.zeros((3, 5))
    return LogitLens(position, LABELS[:3], ids, probs, np.zeros(50257, np.float32))


def _on_output(state):
    return st.select_section(state, st.find_section(state, "output", None))


def _part(positions, value, target_rank=None):
    """A SublayerLens of the columns `positions`, every cell `value`."""
    points, cols = len(LABELS), len(positions)
    full = np.full((points, cols), value, np.float32)
    return SublayerLens(
        LABELS, np.asarray(positions, np.int64), np.zeros((points, cols), np.int64), full,
        np.zeros((points, cols, 5), np.int64), np.full((points, cols, 5), value, np.float32),
        full, full, target_rank,
    )  # fmt: skip


# --- the selected position ---
@pytest.mark.parametrize("picked", [4, 5, 99])
def test_a_selected_position_past_the_prompt_is_its_last_token(state, picked):
    ran = st.select_position(_ran(state, [1, 2, 3, 4]), picked)
    assert ran.position == 3  # positions 0 … 3: the fourth token is the last


def test_a_selected_position_inside_the_prompt_is_kept_and_none_is_the_last(state):
    ran = _ran(state, [1, 2, 3, 4])
    assert [st.select_position(ran, p).position for p in (0, 2, 3, None)] == [0, 2, 3, 3]


# --- a new model: what named tokens or heads of the old one goes ---
@pytest.mark.parametrize("token", ["target", "foil", "baseline_token"])
def test_a_new_model_drops_the_old_vocabularys_attribution_token(state, counts, token):
    chosen = an.AttributionSettings(target=7, foil=9, baseline_token=11, steps=5,
                                    methods=("occlusion",))  # fmt: skip
    fresh = st.with_model(an.with_attribution_settings(state, chosen), _model(counts, 2))
    assert getattr(fresh.attribution, token) is None
    # how to attribute is the person's preference, not the model's: it stays
    assert (fresh.attribution.steps, fresh.attribution.methods) == (5, ("occlusion",))


def test_a_new_model_drops_the_lens_target_grid_and_attribution_of_the_old_one(state, counts):
    ran = an.with_sublayer_lens_target(_ran(state, [1, 2, 3]), 42)
    ran = an.with_sublayer_lens_columns(ran, ran.trace, 42, _part([0, 1, 2], 0.5))
    settings = an.AttributionSettings(target=7)
    ran = an.with_attribution_settings(ran, settings)
    ran = an.with_attribution_run(ran, an.AttributionRun(ran.trace, settings, None, None, 0.1))
    assert ran.sublayer_lens is not None and ran.attribution_run is not None
    fresh = st.with_model(ran, _model(counts, 2))
    assert fresh.sublayer_lens_target is None and fresh.sublayer_lens is None
    assert fresh.attribution_run is None


def test_a_new_model_switches_every_head_and_block_back_on_keeping_the_mode(state, counts):
    busy = st.with_interventions(state, Interventions.parse("0.1,1.2", "1", "mean"))
    fresh = st.with_model(busy, _model(counts, 2))
    assert fresh.interventions == Interventions(mode="mean")


# --- a new run: what belonged to the old trace goes ---
@pytest.mark.parametrize("ids", [[1, 2, 3], [4, 5]], ids=["same prompt", "other prompt"])
def test_a_new_run_drops_the_old_traces_logit_lens(state, ids):
    ran = _on_output(_ran(state, [1, 2, 3]))
    with_lens = st.with_logit_lens(ran, ran.trace, _lens(ran.position))
    assert with_lens.logit_lens is not None and st.logit_lens_wanted(with_lens) is None
    again = _ran(with_lens, ids)  # same prompt: a switch flipped and back, a new trace
    assert again.logit_lens is None
    assert st.logit_lens_wanted(again) == again.position  # the new trace's lens is asked for


def test_a_new_run_drops_the_old_runs_backward_step(state):
    ran = st.with_gradients(_ran(state, [1, 2, 3]), _Gradients(6))
    assert ran.replay_position == 6  # a fresh backward step shows all of its order
    again = _ran(ran, [1, 2, 3])
    assert again.gradients is None and again.replay_position == 0


def test_a_lens_read_from_a_trace_no_longer_shown_is_dropped(state):
    ran = _on_output(_ran(state, [1, 2, 3]))
    old = ran.trace
    newer = _ran(ran, [1, 2, 3])
    assert st.with_logit_lens(newer, old, _lens(2)) is newer


@pytest.mark.parametrize("lens_at", [0, 1])
def test_a_lens_at_another_position_is_read_again_for_the_selected_one(state, lens_at):
    ran = _on_output(st.select_position(_ran(state, [1, 2, 3]), 2))
    with_lens = st.with_logit_lens(ran, ran.trace, _lens(lens_at))
    assert st.logit_lens_wanted(with_lens) == 2
    moved = st.select_position(with_lens, lens_at)
    assert st.logit_lens_wanted(moved) is None


def test_the_lens_is_wanted_only_while_the_output_view_is_open(state):
    ran = _ran(state, [1, 2, 3])
    assert st.logit_lens_wanted(ran) is None  # the embeddings are open
    assert st.logit_lens_wanted(_on_output(ran)) == 2
    assert st.logit_lens_wanted(_on_output(state)) is None  # no run yet


def test_results_of_other_switches_are_not_current(state):
    key = st.RunKey(state.model.serial, state.device, (1, 2), Interventions())
    switched = st.with_interventions(state, Interventions.parse("0.1"))
    assert state.is_current(key) and not switched.is_current(key)


def test_a_patch_run_of_other_settings_is_not_shown(state):
    from gpt_core.analysis.patching import Metric, PatchResult

    asked, other = st.PatchSettings(clean_text="a b"), st.PatchSettings(clean_text="a c")
    result = PatchResult(np.zeros(2, int), np.zeros(2, int), Metric("prob", 1, None, 1),
                         "denoise", 0.5, 0.25)  # fmt: skip
    waiting = st.with_patch_settings(state, asked)
    assert st.with_patch_run(waiting, st.PatchRun(1, other, result, 0.1)) is waiting
    assert st.with_patch_run(waiting, st.PatchRun(1, asked, result, 0.1)).patch_run is not None


# --- the lens grid ---
def test_a_lens_grid_for_another_target_is_not_shown_nor_filled(state):
    ran = an.with_sublayer_lens_target(_ran(state, [1, 2, 3]), 42)
    ran = an.with_sublayer_lens_columns(ran, ran.trace, 42, _part([0], 0.5))
    assert an.current_sublayer_lens(ran) is ran.sublayer_lens
    retargeted = an.with_sublayer_lens_target(ran, 43)
    assert an.current_sublayer_lens(retargeted) is None
    assert an.sublayer_lens_columns_missing(retargeted).tolist() == [True, True, True]
    # columns read for the old target arrive late: dropped
    late = an.with_sublayer_lens_columns(retargeted, ran.trace, 42, _part([1], 0.25))
    assert late is retargeted


def test_lens_columns_fill_a_copy_and_the_missing_ones_are_the_rest(state):
    ran = _ran(state, [1, 2, 3, 4])
    assert an.sublayer_lens_columns_missing(ran).tolist() == [True] * 4
    first = an.with_sublayer_lens_columns(ran, ran.trace, None, _part([2], 0.5))
    grid = first.sublayer_lens
    assert an.sublayer_lens_columns_missing(first).tolist() == [True, True, False, True]
    second = an.with_sublayer_lens_columns(first, ran.trace, None, _part([0, 3], 0.25))
    assert an.sublayer_lens_columns_missing(second).tolist() == [False, True, False, False]
    # the first grid is data: filling the next left it as it was
    assert grid.read.tolist() == [False, False, True, False]
    assert np.isnan(grid.kl[:, [0, 1, 3]]).all() and (grid.kl[:, 2] == 0.5).all()
    kl = second.sublayer_lens.kl
    assert (kl[:, 0] == 0.25).all() and np.isnan(kl[:, 1]).all() and (kl[:, 3] == 0.25).all()
    assert not second.sublayer_lens.complete
    done = an.with_sublayer_lens_columns(second, ran.trace, None, _part([1], 0.125))
    assert done.sublayer_lens.complete and not an.sublayer_lens_columns_missing(done).any()


# --- attribution ---
def test_an_attribution_of_other_settings_is_not_shown(state):
    settings = an.AttributionSettings(target=7, steps=8)
    ran = an.with_attribution_settings(_ran(state, [1, 2, 3]), settings)
    run = an.AttributionRun(ran.trace, settings, None, None, 0.1)
    shown = an.with_attribution_run(ran, run)
    assert an.current_attribution(shown) is run
    more_steps = an.with_attribution_settings(shown, an.AttributionSettings(target=7, steps=9))
    assert an.current_attribution(more_steps) is None


def test_an_attribution_of_a_trace_no_longer_shown_is_dropped(state):
    settings = an.AttributionSettings(target=7)
    ran = an.with_attribution_settings(_ran(state, [1, 2, 3]), settings)
    newer = _ran(ran, [1, 2, 3])
    late = an.AttributionRun(ran.trace, settings, None, None, 0.1)
    assert an.with_attribution_run(newer, late) is newer


@pytest.mark.parametrize(("position", "reach"), [(0, 1), (3, 4)])
def test_the_tokens_that_reach_an_explained_position_are_it_and_those_before(position, reach):
    from gpt_core.analysis.input_attribution import Explained

    run = an.AttributionRun(None, an.AttributionSettings(), Explained(1, None, position), None, 0)
    assert run.reach == reach
