"""The app state's pure transitions, driven without a window or a model run."""

import numpy as np
import pytest

from explorer.state import app_state as st
from explorer.state.sampling import Draw, GenerationSettings
from gpt_core import GPTConfig, Interventions
from gpt_core.analysis import count_parameters
from gpt_core.weights import random_model

CFG = GPTConfig.preset("tiny")  # 2 blocks


@pytest.fixture(scope="module")
def loaded():
    model = random_model(CFG, seed=0)
    return st.LoadedModel(CFG, "random", True, count_parameters(model), {}, serial=1)


@pytest.fixture
def state(loaded):
    return st.with_model(st.AppState(), loaded)


def _at(state, name, layer=None):
    return st.select_section(state, st.find_section(state, name, layer))


def _where(state):
    return state.section.name, state.section.layer


def test_sections_run_in_data_flow_order(state):
    names = [(s.name, s.layer) for s in state.sections]
    block = ["ln1", "attention", "attention_steps", "resid_mid", "ln2", "ff", "block_out"]
    expected = [("tokens", None), ("embeddings", None)]
    expected += [(name, layer) for layer in range(CFG.n_layers) for name in block]
    expected += [("final_norm", None), ("output", None)]
    assert names == expected


def test_stepping_stops_at_both_ends(state):
    assert _where(state) == ("tokens", None)  # the walk starts at the text
    assert _where(st.move_section(state, -1)) == ("tokens", None)
    assert _where(st.move_section(state, +1)) == ("embeddings", None)
    last = st.select_section(state, 10_000)
    assert _where(last) == ("output", None)
    assert _where(st.move_section(last, +1)) == ("output", None)
    assert _where(st.move_section(last, -1)) == ("final_norm", None)


def test_move_layer_keeps_the_section_and_leaves_the_blocks_at_their_ends(state):
    ff0 = _at(state, "ff", 0)
    assert _where(st.move_layer(ff0, +1)) == ("ff", 1)
    assert _where(st.move_layer(ff0, -1)) == ("embeddings", None)
    assert _where(st.move_layer(_at(state, "ff", 1), +1)) == ("final_norm", None)
    assert _where(st.move_layer(state, +1)) == ("ln1", 0)  # from the tokens
    assert _where(st.move_layer(_at(state, "embeddings"), +1)) == ("ln1", 0)
    assert st.move_layer(state, -1) == state  # nothing comes before the tokens
    assert _where(st.move_layer(_at(state, "output"), -1)) == ("block_out", CFG.n_layers - 1)
    assert st.move_layer(_at(state, "output"), +1) == _at(state, "output")


def test_selecting_a_layer_keeps_a_block_section_else_opens_attention(state):
    assert _where(st.select_layer(_at(state, "ln2", 0), 1)) == ("ln2", 1)
    assert _where(st.select_layer(state, 1)) == ("attention", 1)
    moved = st.select_layer(_at(state, "ff", 1), 0)
    assert moved.selection.layer == 0
    # a section outside the blocks keeps the layer the attention views last showed
    assert _at(moved, "final_norm").selection.layer == 0


def test_heads_outside_the_model_are_ignored(state):
    assert st.select_head(state, 3).selection.head == 3
    assert st.select_head(state, CFG.n_heads).selection.head == 0
    assert st.select_head(state, -1).selection.head == 0


def test_section_of_stage_and_the_residual_rows(state):
    index = st.section_of_stage(state, "blocks/1/attn/context")
    assert (state.sections[index].name, state.sections[index].layer) == ("attention", 1)
    assert state.sections[st.section_of_stage(state, "logits")].name == "output"
    assert st.section_of_stage(state, "no/such/key") is None
    rows = [("embeddings", None)]
    for layer in range(CFG.n_layers):
        rows += [("resid_mid", layer), ("block_out", layer)]
    for row, (name, layer) in enumerate(rows):
        section = state.sections[st.find_section(state, name, layer)]
        assert st.depth_row(state, section) == row


def test_a_new_model_forgets_switches_selection_and_results(state, loaded):
    busy = st.with_interventions(_at(state, "ff", 1), Interventions.parse("0.1", "1", "mean"))
    busy = st.select_position(st.select_head(busy, 2), 3)
    fresh = st.with_model(busy, loaded)
    assert fresh.interventions == Interventions(mode="mean")  # the mode is a preference
    assert fresh.selection == st.Selection()
    assert fresh.result is None and fresh.gradients is None and fresh.logit_lens is None


def _result(state, ids):
    key = st.RunKey(state.model.serial, state.device, tuple(ids), Interventions())
    trace = _FakeTrace(len(ids))
    return st.RunResult(key, trace, trace, None, {}, 0.0)


class _FakeTrace:
    def __init__(self, n_tokens):
        self.n_tokens = n_tokens


def test_a_result_for_another_prompt_resets_the_position_the_same_prompt_keeps_it(state):
    first = st.with_result(state, _result(state, [1, 2, 3, 4]), "a")
    picked = st.select_position(first, 1)
    assert picked.position == 1
    again = st.with_result(picked, _result(state, [1, 2, 3, 4]), "a")
    assert again.position == 1
    other = st.with_result(picked, _result(state, [5, 6]), "b")
    assert other.selection.position is None and other.position == 1  # the last of two


def test_results_are_current_only_for_the_same_model_device_and_switches(state, loaded):
    key = st.RunKey(loaded.serial, state.device, (1, 2), Interventions())
    assert state.is_current(key)
    assert not st.with_interventions(state, Interventions.parse("0.0")).is_current(key)
    assert not st.with_device(state, "cuda").is_current(key)
    other = st.LoadedModel(CFG, "other", True, loaded.counts, {}, serial=2)
    assert not st.with_model(state, other).is_current(key)


def test_generated_tokens_belong_to_the_prompt_they_continue(state):
    ran = st.with_result(st.with_prompt(state, "Hello"), _result(state, [1]), "Hello")
    hot = GenerationSettings(temperature=2.0)
    draws = [Draw(7, ran.generation, 1.0), Draw(8, ran.generation, 1.0), Draw(9, hot, 0.25)]
    grown = ran
    for draw in draws:
        grown = st.with_drawn_token(grown, draw)
    assert grown.generated == (7, 8, 9) and grown.draws == tuple(draws)
    grown = st.without_last_token(grown)
    assert grown.generated == (7, 8) and grown.draws == tuple(draws[:2])
    assert st.drop_generation_of_other_prompt(grown).generated == (7, 8)
    edited = st.with_prompt(grown, "Goodbye")
    assert st.drop_generation_of_other_prompt(edited).generated == ()
    assert st.drop_generation_of_other_prompt(edited).draws == ()
    adopted = st.adopt_generated(grown, " world")
    assert adopted.prompt_text == "Hello world" and adopted.generated == ()


def test_replay_position_is_clamped_to_the_backward_order(state):
    class Gradients:
        backward = type("Info", (), {"order": tuple(("k", 1.0) for _ in range(5))})()

    with_grads = st.with_gradients(state, Gradients())
    assert with_grads.replay_position == 5
    assert st.with_replay_position(with_grads, 99).replay_position == 5
    assert st.with_replay_position(with_grads, -3).replay_position == 0
    assert st.with_replay_position(state, 3) is state  # nothing to replay


def test_patch_results_belong_to_their_settings_and_model(state, loaded):
    from gpt_core.analysis.patching import Metric, PatchResult

    settings = st.PatchSettings(clean_text="a b", corrupted_text="a c")
    result = PatchResult(np.zeros(2, int), np.zeros(2, int), Metric("prob", 1, None, 1),
                         "denoise", 0.5, 0.25)  # fmt: skip
    run = st.PatchRun(loaded.serial, settings, result, 0.1)
    with_settings = st.with_patch_settings(state, settings)
    shown = st.with_patch_run(with_settings, run)
    assert shown.patch_run is run
    assert st.with_patch_run(state, run).patch_run is None  # other settings
    assert st.with_patch_settings(shown, settings).patch_run is run  # the same settings
    moved = st.with_patch_settings(shown, st.PatchSettings(clean_text="x"))
    assert moved.patch_run is None
    other = st.LoadedModel(CFG, "other", True, loaded.counts, {}, serial=9)
    assert st.with_model(shown, other).patch_run is None


def test_an_attribution_is_shown_only_for_the_run_it_explains(state):
    from explorer.state import analysis as an

    settings = an.AttributionSettings(target=7)
    first = an.with_attribution_settings(
        st.with_result(state, _result(state, [1, 2, 3]), "a"), settings
    )
    run = an.AttributionRun(first.trace, settings, None, None, 0.1)
    shown = an.with_attribution_run(first, run)
    assert an.current_attribution(shown) is run
    # the same prompt and settings re-run (a switch flipped and back): a new trace
    rerun = st.with_result(shown, _result(state, [1, 2, 3]), "a")
    assert rerun.attribution == settings and an.current_attribution(rerun) is None
