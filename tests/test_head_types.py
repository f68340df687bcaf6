"""Induction and duplicate-token scores: hand-built attention patterns with known answers,
and every head of a real model recomputed with plain loops over its captured weights."""

import numpy as np
import pytest

from gpt_core import capture, load_model, stage_key
from gpt_core.analysis import (
    head_type_scores,
    prompt_head_scores,
    repeat_scores,
    repeated_sequence_ids,
)
from gpt_core.analysis.head_types import prompt_repeat_scores

N = 6  # tokens per copy
T = 2 * N + 1


def _causal_uniform() -> np.ndarray:
    weights = np.tril(np.ones((T, T)))
    return weights / weights.sum(-1, keepdims=True)


def _pointing(offset: int) -> np.ndarray:
    """Every second-copy position puts all its weight `offset` positions back."""
    weights = _causal_uniform()
    for t in range(N + 1, T):
        weights[t] = 0.0
        weights[t, t - offset] = 1.0
    return weights


def test_known_patterns():
    weights = np.stack([_pointing(N - 1), _pointing(N), _causal_uniform()])  # [3, T, T]
    scores = repeat_scores(weights, N)
    assert scores["induction"][0] == 1.0 and scores["duplicate_token"][0] == 0.0
    assert scores["induction"][1] == 0.0 and scores["duplicate_token"][1] == 1.0
    expected = np.mean([1 / (t + 1) for t in range(N + 1, T)])  # uniform over t + 1 keys
    assert scores["induction"][2] == pytest.approx(expected)
    assert scores["duplicate_token"][2] == pytest.approx(expected)


def test_the_probe_repeats_seeded_random_tokens():
    ids = repeated_sequence_ids(N, seed=4)
    assert len(ids) == T and ids[0] == 50256 and ids[1 : N + 1] == ids[N + 1 :]
    assert ids == repeated_sequence_ids(N, seed=4) and ids != repeated_sequence_ids(N, seed=5)
    assert 50256 not in ids[1:]


def test_every_head_recomputed_with_loops():
    model, cfg = load_model(None, "tiny", seed=2)
    scores = head_type_scores(model, length=20, seed=1)
    ids = repeated_sequence_ids(20, seed=1)
    assert scores["ids"].tolist() == ids
    trace = capture(model, ids)
    for layer in range(cfg.n_layers):
        weights = trace[stage_key("attn/weights", layer)].astype(np.float64)
        for head in range(cfg.n_heads):
            induction = duplicate = 0.0
            for t in range(21, 41):
                previous = next(s for s in range(t) if ids[s] == ids[t])  # its first occurrence
                induction += weights[head, t, previous + 1] / 20
                duplicate += weights[head, t, previous] / 20
            assert scores["induction"][layer, head] == pytest.approx(induction, abs=1e-7)
            assert scores["duplicate_token"][layer, head] == pytest.approx(duplicate, abs=1e-7)
    assert set(scores) >= {"entropy", "previous", "first", "self"}


def _prompt_scores_by_loops(weights: np.ndarray, ids: list[int]) -> tuple[list, list]:
    """weights [H, T, T] in float64: each head's induction and duplicate-token score on its
    own prompt, one query at a time (NaN where no query repeats a token)."""
    induction, duplicate = [], []
    for head in range(weights.shape[0]):
        ind, dup = [], []
        for t in range(len(ids)):
            earlier = [s for s in range(t) if ids[s] == ids[t]]
            if earlier:
                dup.append(sum(weights[head, t, s] for s in earlier))
            after = sorted({s + 1 for s in earlier if s + 1 < t})
            if after:
                ind.append(sum(weights[head, t, s] for s in after))
        induction.append(np.mean(ind) if ind else np.nan)
        duplicate.append(np.mean(dup) if dup else np.nan)
    return induction, duplicate


PROMPTS = [
    "The cat sat on the mat. The cat sat on the mat.",  # repeats, some twice
    "the the the the",  # a token repeated at once: itself is no induction target
    "One two three four",  # repeats nothing
]


@pytest.mark.parametrize("text", PROMPTS)
def test_prompt_scores_recomputed_with_loops(tiny_model, tokenizer, text):
    ids = tokenizer.encode(text)
    trace = capture(tiny_model, ids)
    scores = prompt_head_scores(trace)
    for layer in range(trace.config.n_layers):
        weights = trace[stage_key("attn/weights", layer)].astype(np.float64)
        induction, duplicate = _prompt_scores_by_loops(weights, ids)
        assert scores["prompt_induction"].shape == (trace.config.n_layers, trace.config.n_heads)
        assert np.allclose(scores["prompt_induction"][layer], induction, atol=1e-7, equal_nan=True)
        assert np.allclose(
            scores["prompt_duplicate_token"][layer], duplicate, atol=1e-7, equal_nan=True
        )
    repeats = len(set(ids)) < len(ids)
    assert np.isnan(scores["prompt_duplicate_token"]).all() != repeats


def test_prompt_scores_are_the_repeat_scores_on_the_repeated_sequence():
    """On a sequence of distinct tokens repeated twice the prompt's scores are the probe's."""
    ids = repeated_sequence_ids(N, seed=4)
    assert len(set(ids)) == N + 1
    rng = np.random.default_rng(0)
    weights = np.tril(rng.random((3, T, T)))
    weights /= weights.sum(-1, keepdims=True)
    probe = repeat_scores(weights, N)
    prompt = prompt_repeat_scores(weights, ids)
    assert np.allclose(prompt["prompt_induction"], probe["induction"], atol=1e-12)
    assert np.allclose(prompt["prompt_duplicate_token"], probe["duplicate_token"], atol=1e-12)


def test_the_overview_offers_the_head_types(window, qtbot):
    from tests.conftest import wait_for_run

    session = window.session
    wait_for_run(qtbot, session, "The cat sat on the mat")
    session.select_layer(0)
    view = window.stage_panel.current_view()
    view.metric.setCurrentIndex(view.metric.findData("induction"))
    expected = head_type_scores(session.model)["induction"]
    assert np.allclose(view.overview.matrix, expected, atol=1e-6)
    assert view.overview.title_label.text.startswith("Induction")


def test_the_heads_command_writes_every_score(tmp_path):
    from tests.cli_helpers import run_cli  # in-process: test_cli runs the entry point

    done = run_cli("heads", "--preset", "tiny", "--seed", "2", "--repeat-length", "20",
                   "--sequence-seed", "1", "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    model, _ = load_model(None, "tiny", seed=2)
    expected = head_type_scores(model, length=20, seed=1)
    with np.load(tmp_path / "head_scores.npz") as files:
        assert set(files.files) == {
            "induction", "duplicate_token", "previous_token", "first_token", "self", "entropy",
            "ids",
        }  # fmt: skip
        assert np.allclose(files["induction"], expected["induction"], atol=1e-6)
        assert np.allclose(files["previous_token"], expected["previous"], atol=1e-6)
        assert files["ids"].tolist() == repeated_sequence_ids(20, seed=1)
    assert (tmp_path / "induction.png").stat().st_size > 0
    bad = run_cli("heads", "--preset", "tiny", "--repeat-length", "1", "--out", str(tmp_path))
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_the_overview_says_where_each_score_was_measured(window, qtbot):
    """The repeated-sequence scores are labelled as measured there, not on the prompt on
    screen; the prompt's own scores sit beside them, and a prompt that repeats no token
    says so instead of drawing a map of nothing."""
    from tests.conftest import wait_for_run

    session = window.session
    wait_for_run(qtbot, session, "The cat sat on a mat")  # repeats no token
    session.select_layer(1)
    session.select_head(2)
    view = window.stage_panel.current_view()
    texts = [view.metric.itemText(i) for i in range(view.metric.count())]
    assert "Induction (seeded repeated sequence)" in texts
    assert "Induction (this prompt)" in texts and "Previous token (this prompt)" in texts
    assert all(t.endswith(("(this prompt)", "(seeded repeated sequence)")) for t in texts)
    view.metric.setCurrentIndex(view.metric.findData("induction"))
    title = view.overview.title_label.text
    assert "seeded repeated sequence" in title and "not this prompt" in title
    view.metric.setCurrentIndex(view.metric.findData("prompt_induction"))
    assert not view.overview.isVisible()
    note = view.head_scores.text()
    assert note.startswith("Head 1.2 — this prompt: previous token")
    assert "repeats no token" in note and "seeded repeated sequence: induction" in note
    wait_for_run(qtbot, session, "The cat sat on a mat. The cat sat on a mat.")
    view = window.stage_panel.current_view()
    assert view.overview.isVisible()
    expected = prompt_head_scores(session.trace)["prompt_induction"]
    assert np.allclose(view.overview.matrix, expected, atol=1e-6)
    assert view.overview.title_label.text == "Induction on this prompt"
    assert f", induction {expected[1, 2]:.3f}, " in view.head_scores.text()
    # " cat sat on a mat." again (" The" is not "The"): 6 of the 14 tokens repeat
    assert "6 of 14 positions repeat a token" in view.head_scores.text()
