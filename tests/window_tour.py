"""A tour of the main window for the layout audit and the screenshot gallery: the window
on a screen of a given size with every dock open, then every section of the stage walk and
every tab, before and after its job has run. The sections come from the session (the
stage registry), the tabs from the window's tab widget, the jobs from JOB_KINDS and each
tab's `job_kind` and `run_button`: a section or tab added later is toured unchanged."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QApplication, QWidget

from explorer.session.jobs.kinds import JOB_KINDS
from explorer.state.app_state import PatchSettings
from gpt_core import GPTConfig, Interventions
from gpt_core.analysis.patching import SWEEPS
from tests.sae_helpers import make_sae

SIZES = ((1280, 800), (1366, 768), (1920, 1080))
TWELVE_HEADS = GPTConfig(context_length=1024, emb_dim=48, n_heads=12, n_layers=2, qkv_bias=True)
TWENTY_FIVE_HEADS = TWELVE_HEADS.replace(n_heads=25, emb_dim=50)
# single-token words (with their leading space): a prompt of exactly T tokens
WORDS = [
    "",
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "and",
    "the",
    "dog",
    "ran",
    "to",
    "it",
    "so",
    "we",
    "all",
    "went",
    "home",
][1:]
EXACT_PATCHING_UP_TO = 128  # tokens: longer prompts patch by attribution (one backward)
SMALL_MODEL_LAYERS = 2  # deeper models patch the residual stream and heads only (a run per cell)
# Jobs left out on longer prompts: occlusion runs the model once per position (minutes).
SLOW_ON_LONG_PROMPTS = frozenset({"attribution"})
TIMEOUT_S = 120.0


def settle(ms: int = 30, most_ms: int = 2000) -> None:
    """Let layouts, resizes and pyqtgraph's deferred updates run, until the widgets keep
    their sizes (a plot's minimum size follows its axes, which follow its size: a few
    rounds) or `most_ms` have passed."""
    end, last = time.monotonic() + most_ms / 1000, None
    while time.monotonic() < end:
        pause = time.monotonic() + ms / 1000
        while time.monotonic() < pause:
            QApplication.processEvents()
            time.sleep(0.005)
        sizes = _sizes()
        if sizes == last:
            return
        last = sizes


def _sizes() -> list:
    return [
        (w.size().toTuple(), w.minimumSize().toTuple())
        for top in QApplication.topLevelWidgets()
        if top.isVisible()
        for w in top.findChildren(QWidget)
        if w.isVisible()
    ]


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.005)


def wait_idle(session) -> None:
    wait_until(lambda: not session.runner.is_busy(), "the session's jobs")
    settle()


def prompt_of(tokens: int) -> str:
    """A prompt of exactly `tokens` GPT-2 tokens."""
    return "".join(f" {WORDS[i % len(WORDS)]}" for i in range(tokens))


@dataclass(frozen=True)
class Setting:
    """One window to tour: a screen size, a model, a prompt length, switches on or off."""

    size: tuple[int, int]
    model: GPTConfig | str  # a config (seeded random weights) or a weights file
    tokens: int  # the prompt's length
    switched_off: bool = False
    prompt: str = ""  # the prompt, `tokens` long; "" for prompt_of(tokens)
    label: str = ""  # the model's name in `name`; "" for its head count

    @property
    def name(self) -> str:
        model = self.label or f"{self.model.n_heads}heads"
        off = "-off" if self.switched_off else ""
        return f"{self.size[0]}x{self.size[1]}-{model}-T{self.tokens}{off}"

    @property
    def text(self) -> str:
        return self.prompt or prompt_of(self.tokens)


def open_window(setting: Setting):
    """The window as on a screen of `setting.size`, every dock open, the model loaded and
    the prompt typed but not run yet."""
    from explorer.app import build_window
    from explorer.commands.parser import gui_parser
    from explorer.ui.settings import open_settings

    args = gui_parser().parse_args(["--preset", "tiny", "--device", "cpu", "--seed", "1"])
    window, session = build_window(args, open_settings())
    window.fit_screen(QSize(*setting.size))
    window.show()
    wait_until(lambda: session.model is not None, "the first model")
    wait_idle(session)
    if isinstance(setting.model, str):
        session.load_weights(setting.model)
    else:
        session.load_weights(None, setting.model, seed=1)
    wait_until(lambda: session.config == _config_of(setting, session), "the model")
    wait_idle(session)
    for dock in window.findChildren(QWidget):
        if dock.objectName().startswith("dock_"):
            dock.show()
    window.resize(*setting.size)
    session.set_prompt(setting.text)
    settle()
    return window


def _config_of(setting: Setting, session):
    return setting.model if isinstance(setting.model, GPTConfig) else session.config


def _switch_off(session) -> None:
    """Block 0 off and half the heads of the last block."""
    config = session.config
    last = config.n_layers - 1
    heads = frozenset((last, h) for h in range(0, config.n_heads, 2))
    session.set_interventions(Interventions(ablate_heads=heads, skip_layers=frozenset({0})))


def _patch_settings(session, setting: Setting) -> PatchSettings:
    """The prompt as the clean run, one word in its middle changed as the corrupted one;
    every sweep on a small model, exact and estimated where the prompt is short."""
    clean = setting.text
    words = clean.split(" ")
    middle = len(words) // 2
    words[middle] = "dog" if words[middle] != "dog" else "cat"
    small = session.config.n_layers <= SMALL_MODEL_LAYERS
    exact = setting.tokens <= EXACT_PATCHING_UP_TO
    return replace(
        PatchSettings(),
        clean_text=clean,
        corrupted_text=" ".join(words),
        sweeps=tuple(SWEEPS) if small else ("resid", "heads"),
        method="both" if exact else "attribution",
    )


def _load_an_sae(session) -> None:
    """A small random SAE at block 0's input, so the Features tab has features to show."""
    folder = Path(tempfile.mkdtemp(prefix="tour-sae-"))
    cfg = session.config
    make_sae(folder, cfg.emb_dim, 4 * cfg.emb_dim, "blocks.0.hook_resid_pre")
    session.features.load(str(folder))
    wait_until(lambda: session.state.features.usable is not None, "the SAE")
    wait_idle(session)


def tab_pages(window) -> list[tuple[int, QWidget]]:
    return [(i, window.tabs.widget(i)) for i in range(window.tabs.count())]


def tour(window, setting: Setting, sections: Callable = lambda s: s) -> Iterator[str]:
    """Show each state in turn; yields its name while it is on screen. `sections` picks the
    sections to show after the run (all by default)."""
    session = window.session
    for index in range(window.tabs.count()):  # before anything ran
        window.tabs.setCurrentIndex(index)
        settle()
        yield f"{window.tabs.tabText(index)} · before the run"
    window.tabs.setCurrentIndex(0)
    _load_an_sae(session)
    if setting.switched_off:
        _switch_off(session)
        wait_idle(session)
    session.patching.set_settings(_patch_settings(session, setting))
    window.on_run()
    wait_until(lambda: session.trace is not None, "the run")
    wait_idle(session)
    for index, section in sections(list(enumerate(session.sections))):
        session.select_section(index)
        wait_idle(session)
        where = section.title + (f" {section.layer}" if section.layer is not None else "")
        yield f"Stage · {where}"
    yield from _tabs_after_the_run(window, setting.tokens > EXACT_PATCHING_UP_TO)


def _tabs_after_the_run(window, long_prompt: bool) -> Iterator[str]:
    session = window.session
    for index, page in tab_pages(window)[1:]:
        assert page.job_kind in JOB_KINDS, f"tab {index} names no job of JOB_KINDS"
        window.tabs.setCurrentIndex(index)
        wait_idle(session)
        title = window.tabs.tabText(index)
        if page.run_button is not None:
            yield f"{title} · before its job"
            if long_prompt and page.job_kind in SLOW_ON_LONG_PROMPTS:
                continue
            page.run_button.click()
            wait_idle(session)
        yield f"{title} · after its job"
