"""The guided tour: its steps as one table, and the pure transitions that walk it (no Qt).

Each step names the section its view draws (and, inside that view, the part to show), the
tab it needs, and the function that writes its sentences from the run (tour_text.py). The
block, head and (query, key) pair every step opens are picked from the trace once
(pick_focus), so the whole tour follows one head and one token; a new run picks again.
A step is a row here: a new section's step is one more TourStep.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace

from explorer.state.app_state import (
    AppState,
    RunResult,
    find_section,
    select_head,
    select_pair,
    select_section,
    with_result,
)
from explorer.state.tour_ends import say_sampling, say_tokens
from explorer.state.tour_text import (
    Focus,
    Said,
    TourContext,
    pick_focus,
    random_weights_note,
    say_backward,
    say_block_out,
    say_context,
    say_embedding_sum,
    say_feed_forward,
    say_ln1,
    say_ln2,
    say_mask,
    say_output,
    say_position_embedding,
    say_qkv,
    say_resid_mid,
    say_scores,
    say_softmax,
    say_token_embedding,
)
from gpt_core import Trace
from gpt_core.probe.sections import SECTIONS

STAGE_TAB, BACKWARD_TAB = "Stage", "Backward step"  # titles of the window's tabs


@dataclass(frozen=True)
class TourStep:
    name: str
    title: str  # the panel's heading
    section: str  # the section it opens: a name of gpt_core's SECTIONS (a block one: the focus's)
    say: Callable[[TourContext], Said]  # its sentences, from the run
    part: str = ""  # where in that view: the embeddings' heatmap shown large ("token",
    # "position", "sum") or the attention step ("1" .. "6"); "" for the whole view
    tab: str = STAGE_TAB  # the title of the tab it needs
    action: str = ""  # a window action (actions.py) it offers a button for


TOUR_STEPS: tuple[TourStep, ...] = (
    TourStep("tokens", "Text → tokens", "tokens", say_tokens),
    TourStep("token_embedding", "Token embedding", "embeddings", say_token_embedding, "token"),
    TourStep(
        "position_embedding",
        "Positional embedding",
        "embeddings",
        say_position_embedding,
        "position",
    ),
    TourStep("embedding_sum", "Their sum", "embeddings", say_embedding_sum, "sum"),
    TourStep("ln1", "LayerNorm 1", "ln1", say_ln1),
    TourStep("qkv", "Queries, keys and values", "attention_steps", say_qkv, "1"),
    TourStep("scores", "Scores: q·k / √d", "attention_steps", say_scores, "2"),
    TourStep("mask", "The causal mask", "attention_steps", say_mask, "3"),
    TourStep("softmax", "Softmax: scores become weights", "attention_steps", say_softmax, "4"),
    TourStep("context", "Context vectors and out_proj", "attention_steps", say_context, "5"),
    TourStep("resid_mid", "+ residual (after attention)", "resid_mid", say_resid_mid),
    TourStep("ln2", "LayerNorm 2", "ln2", say_ln2),
    TourStep("feed_forward", "Feed-forward and GELU", "ff", say_feed_forward),
    TourStep("block_out", "+ residual (after the feed-forward)", "block_out", say_block_out),
    TourStep("output", "Final LayerNorm and output head", "output", say_output),
    TourStep("sampling", "The sampling distribution", "output", say_sampling, "sampling"),
    TourStep(
        "backward",
        "The loss and one backward step",
        "output",
        say_backward,
        tab=BACKWARD_TAB,
        action="backward",
    ),
)

_FOCUS: weakref.WeakKeyDictionary[Trace, Focus] = weakref.WeakKeyDictionary()


def focus_of(trace: Trace) -> Focus:
    """The tour's place in this trace, picked once per trace (the pick reads every block)."""
    focus = _FOCUS.get(trace)
    if focus is None:
        focus = _FOCUS[trace] = pick_focus(trace)
    return focus


def current_step(state: AppState) -> TourStep:
    return TOUR_STEPS[state.tour.step]


# --- transitions ---
def open_tour(state: AppState) -> AppState:
    """Show the tour at the step it was left at."""
    return go_to_step(replace(state, tour=replace(state.tour, open=True)), state.tour.step)


def close_tour(state: AppState) -> AppState:
    """Leave the tour; it remembers its step, to resume there."""
    return replace(state, tour=replace(state.tour, open=False))


def resume_at(state: AppState, step: int) -> AppState:
    """The step the next opening starts at (a remembered one), without showing it."""
    return replace(state, tour=replace(state.tour, step=_clamped(step)))


def go_to_step(state: AppState, step: int) -> AppState:
    """Step `step` (clamped to the table), with its section, head and pair selected."""
    return show_step(replace(state, tour=replace(state.tour, step=_clamped(step))))


def move_step(state: AppState, delta: int) -> AppState:
    """The next (delta = 1) or previous (-1) step."""
    return go_to_step(state, state.tour.step + delta)


def show_step(state: AppState) -> AppState:
    """Select what the current step shows: its section (in the focus's block), and the
    focus's head, query and key. Before a run, the section only (block 0)."""
    step = current_step(state)
    focus = focus_of(state.trace) if state.trace is not None else None
    layer = None
    if SECTIONS[step.section].per_block:
        layer = focus.layer if focus is not None else 0
    index = find_section(state, step.section, layer)
    if index is not None:
        state = select_section(state, index)
    if focus is not None:
        state = select_pair(select_head(state, focus.head), focus.query, focus.key)
    return state


def with_result_on_tour(state: AppState, result: RunResult, text: str) -> AppState:
    """A run's result; an open tour shows its step again in the new run (its focus is
    picked anew), so nothing it points at is of the old run."""
    state = with_result(state, result, text)
    return show_step(state) if state.tour.open else state


def _clamped(step: int) -> int:
    return max(0, min(int(step), len(TOUR_STEPS) - 1))


# --- what the panel shows ---
@dataclass(frozen=True)
class TourPage:
    number: int  # 1-based
    step: TourStep
    said: Said | None  # None before a run
    notes: tuple[str, ...]  # random weights, a prompt edited since the run, no run yet


def tour_page(state: AppState) -> TourPage:
    """The current step's page, written from the state's run (so never from an older one)."""
    step, notes = current_step(state), []
    said = None
    if state.trace is None:
        notes.append(
            "Run the prompt (Ctrl+Enter) to start: every step reads this prompt's numbers."
            if state.prompt_text.strip()
            else "Type a prompt and run it (Ctrl+Enter): every step reads its numbers."
        )
    else:
        said = step.say(TourContext(state, focus_of(state.trace)))
        if state.ran_text is not None and state.prompt_text != state.ran_text:
            notes.append("The prompt box has changed since this run: Run to follow the new text.")
    if state.model is not None and random_weights_note(state.model):
        notes.append(random_weights_note(state.model))
    return TourPage(state.tour.step + 1, step, said, tuple(notes))
