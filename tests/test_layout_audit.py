"""The layout audit: the real window, offscreen, through every section of the stage walk and
every tab, before and after its job has run, with every dock open, checked by walking the
widget tree (tests/layout_checks.py names no widget: a view added later is audited as it is).

Every (section, tab, state) is checked in every setting. The settings cover the screen
sizes, prompts of 5 and 128 tokens, 12 and 25 heads and switches on and off pairwise (every
pair of values of two dimensions in some setting) rather than as their full product, which
would take many minutes; two more take a 1,000-token prompt at the smallest and the largest
size, one with each head count and each state of the switches."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from tests import layout_checks as checks
from tests.window_tour import SIZES, TWELVE_HEADS, TWENTY_FIVE_HEADS, Setting, open_window, tour

TOKENS = (5, 128)
LONG = 1000
HEADS = {12: TWELVE_HEADS, 25: TWENTY_FIVE_HEADS}
# (size, tokens, heads, switched off)
PAIRWISE = (
    ((1280, 800), 5, 12, False),
    ((1280, 800), 128, 25, True),
    ((1366, 768), 5, 25, True),
    ((1366, 768), 128, 12, False),
    ((1920, 1080), 5, 12, True),
    ((1920, 1080), 128, 25, False),
)
LONG_PROMPTS = (
    ((1280, 800), LONG, 25, True),
    ((1920, 1080), LONG, 12, False),
)
SETTINGS = [
    Setting(size, HEADS[heads], tokens, off)
    for size, tokens, heads, off in (*PAIRWISE, *LONG_PROMPTS)
]


def test_the_settings_cover_every_pair_of_values():
    values = (SIZES, TOKENS, tuple(HEADS), (False, True))
    for first, second in combinations(range(len(values)), 2):
        seen = {(row[first], row[second]) for row in PAIRWISE}
        wanted = {(a, b) for a in values[first] for b in values[second]}
        assert seen == wanted, f"dimensions {first} and {second} miss {wanted - seen}"
    for dimension in (2, 3):  # the long prompt with each head count and switch state
        assert {row[dimension] for row in LONG_PROMPTS} == set(values[dimension])


def _keeper(window):
    """keep(view): the labels an axis of positions in `view` must always show: the selected
    position, and in the patching job's tab where the two prompts differ."""
    session = window.session
    selected = set()
    if session.trace is not None:
        selected.add(session.trace.position_labels[session.position])
    differ = set()
    run = session.state.patch_run
    if run is not None:
        clean, corrupted = run.result.clean_ids, run.result.corrupted_ids
        shown = session.tokenizer.displays(clean.tolist())
        differ = {f"{p}:{shown[p]}" for p in np.flatnonzero(clean != corrupted)}
    pages = [window.tabs.widget(i) for i in range(window.tabs.count())]
    patching = [page for page in pages if page.job_kind == "patch"]

    def keep(view) -> set[str]:
        in_patching = any(page.isAncestorOf(view) for page in patching)
        return differ if in_patching else selected

    return keep


def problems_in(window) -> list[str]:
    widgets = checks.visible_widgets(window)
    session = window.session
    names = set(session.trace.position_labels) if session.trace is not None else set()
    return [
        *checks.plot_problems(widgets),
        *checks.aspect_problems(widgets),
        *checks.text_problems(widgets),
        *checks.overlap_problems(widgets),
        *checks.scroll_problems(widgets),
        *checks.tick_problems(widgets),
        *checks.token_axis_problems(widgets, names, _keeper(window)),
    ]


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_view_is_readable(setting, qtbot):
    window = open_window(setting)
    qtbot.addWidget(window)
    found: dict[str, list[str]] = {}  # problem: the states it was seen in
    try:
        states = list(_audit(window, setting, found))
    finally:
        window.close()
    assert len(states) >= len(window.session.sections) + 2 * window.tabs.count()
    report = [f"{problem}\n      in {', '.join(seen[:3])}" for problem, seen in found.items()]
    assert not report, f"{len(report)} layout problems:\n" + "\n".join(report)


def _audit(window, setting, found):
    for state in tour(window, setting):
        for problem in problems_in(window):
            found.setdefault(problem, []).append(state)
        yield state
