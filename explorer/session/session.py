"""The Session: the thin Qt layer over the app state. It owns the torch model, runs jobs
through the Runner (never on the GUI thread), replaces its AppState through the pure
transitions of state/app_state.py and says what changed with one signal per part of the state.

Widgets read `session.state` (and the shortcuts below) and call the setters; they never
write the state, emit these signals or touch the model. A job's result is applied only if
it still belongs to the current model, device, prompt and switches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from PySide6.QtCore import QObject, Signal

from explorer.session.generation import GenerationMixin
from explorer.session.jobs.features import FeatureJobs
from explorer.session.jobs.input_attribution import InputAttributionJobs
from explorer.session.jobs.kinds import JOB_KINDS, reason
from explorer.session.jobs.logit_lens import LogitLensJobs
from explorer.session.jobs.model_work import (
    backward_job,
    backward_summary,
    load_job,
    load_messages,
    run_job,
    run_summary,
)
from explorer.session.jobs.out_proj import OutProjJobs
from explorer.session.jobs.patching import PatchingJobs
from explorer.session.jobs.repeated_sequence import RepeatedSequenceJobs
from explorer.session.jobs.sublayer_lens import SublayerLensJobs
from explorer.session.jobs.weight_matrices import WeightMatricesJobs
from explorer.session.switches import SwitchesMixin
from explorer.session.tour import TourMixin
from explorer.session.worker import JobContext, Runner
from explorer.state import app_state as st
from explorer.state.app_state import AppState, RunKey, RunResult
from explorer.state.changes import PARTS, changed_parts
from explorer.state.tour import with_result_on_tour
from gpt_core import (
    DeviceError,
    GPTConfig,
    PromptError,
    Trace,
    get_tokenizer,
    resolve_device,
)
from gpt_core.model import GPTModel
from gpt_core.model.tokenizer import check_prompt_text
from gpt_core.util.devices import describe_device
from gpt_core.weights.hub import is_cached


def signal_name(part: str) -> str:
    """The signal announcing a part of the state: "sublayer_lens" -> "sublayerLensChanged"."""
    first, *rest = part.split("_")
    return first + "".join(word.title() for word in rest) + "Changed"


def _from_state(name: str) -> property:
    return property(lambda self: getattr(self.state, name), doc=f"state.{name}")


# One signal per part of the state, built from the table of parts so the two cannot drift;
# each means what PARTS[part].meaning says.
PartSignals = type("PartSignals", (QObject,), {signal_name(part): Signal() for part in PARTS})


class Session(GenerationMixin, TourMixin, SwitchesMixin, PartSignals):
    changed = Signal(object)  # after the part signals: the frozenset of parts that changed
    busyChanged = Signal(bool, str, str)  # working?, job kind (a key of JOB_KINDS), label
    progress = Signal(object, str)  # fraction done (None: unknown), what is happening
    message = Signal(str, str)  # level ("status", "info", "warning", "error"), text
    promptTooLong = Signal(int, int)  # tokens, the model's context length

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.tokenizer = get_tokenizer()
        self.runner = Runner(self)
        self.runner.busyChanged.connect(self.busyChanged)
        self.state = AppState()
        self.run_after_load = False  # run the prompt once the next model is in
        self._model: GPTModel | None = None
        self.logit_lens = LogitLensJobs(self)  # the logit lens the output view shows
        self.patching = PatchingJobs(self)  # the Patching tab's experiments
        self.sublayer_lens = SublayerLensJobs(self)  # the Sub-layer lens tab's grid, in chunks
        self.attribution = InputAttributionJobs(self)  # the Attribution tab's scores
        self.repeated_sequence = RepeatedSequenceJobs(self)  # a head on the repeated sequence
        self.weight_matrices = WeightMatricesJobs(self)  # the Weights dialog's matrices
        self.out_proj = OutProjJobs(self)  # a block's out_proj weights, for the attention steps
        self.features = FeatureJobs(self)  # the Features tab: SAE, features, cards, scans

    # ------------------------------------------------------------------ reading
    # Shortcuts to the state: session.trace is session.state.trace.
    config = _from_state("config")
    trace = _from_state("trace")
    result = _from_state("result")
    section = _from_state("section")
    sections = _from_state("sections")
    selection = _from_state("selection")
    position = _from_state("position")
    interventions = _from_state("interventions")
    gradients = _from_state("gradients")

    @property
    def model(self) -> GPTModel | None:
        """The torch model, for headless use and tests; widgets read the state instead."""
        return self._model

    @property
    def device(self) -> torch.device:
        return torch.device(self.state.device)

    def device_label(self) -> str:
        return describe_device(self.device)

    # ------------------------------------------------------------------ state changes
    def update(self, transition: Callable[..., AppState], *args) -> None:
        """Apply a pure transition of the state (`transition(state, *args)`): the one way
        the state changes, for the session and its job modules alike. Announces each part
        that changed, then starts the work the new state asks for."""
        old = self.state
        self.state = new = transition(old, *args)
        parts = changed_parts(old, new)
        for name in PARTS:
            if name in parts:
                getattr(self, signal_name(name)).emit()
        if parts:
            self.changed.emit(parts)
        self.logit_lens.request_if_shown()

    def report(self, level: str, text: str) -> None:
        self.message.emit(level, text)

    def report_failure(self, exc: BaseException, formatted: str = "") -> None:
        """A job failed: tell the person why, in their words (the traceback is not shown)."""
        self.report("error", reason(exc))

    def submit(self, kind: str, job, done, on_progress=None, on_stopped=None, tag=None) -> None:
        """Run `job` off the GUI thread as a job of `kind` (a key of JOB_KINDS); a failure is
        reported, `done` gets the result on the GUI thread."""
        self.runner.submit(
            kind, job, done, self.report_failure, on_progress, JOB_KINDS[kind].label,
            on_stopped, tag,
        )  # fmt: skip

    def cancel(self, kind: str) -> None:
        if self.runner.has_job(kind):
            self.report("status", f"Stopping: {JOB_KINDS[kind].label}")
            self.runner.cancel(kind)

    def shut_down(self, wait_ms: int = 500) -> None:
        """Stop every job (the window is closing): wait `wait_ms` for them to stop, then go
        on without them; nothing they return is applied."""
        self.runner.close()
        self.runner.wait(wait_ms)

    # ------------------------------------------------------------------ model
    def load_weights(
        self,
        source: str | None = None,
        config: GPTConfig | str | None = None,
        seed: int = 0,
        instead_of: str = "",
    ) -> None:
        """Load weights in the background; the model in use stays until the new one is ready.
        `instead_of` says why, when they stand in for weights that could not be loaded."""
        label = "random weights" if source is None else str(source)
        device = self.device

        def job(ctx: JobContext):
            return load_job(source, config, seed, device, ctx)

        def done(result) -> None:
            loaded = replace(result[1], instead_of=instead_of)
            self._model = result[0]
            # Rerun what was shown, or asked for, on the new model.
            asked = self.run_after_load or self.runner.in_flight("run") is not None
            rerun = (self.state.result is not None or asked) and bool(
                self.state.prompt_text.strip()
            )
            self.run_after_load = False
            self.update(st.with_model, loaded)
            for kind, text in load_messages(loaded):
                self.report(kind, text)
            if rerun:
                self.run()

        def failed(exc: BaseException, formatted: str) -> None:
            problem = f"Could not load {label}: {reason(exc)}."
            if self._model is not None:
                self.report("error", f"{problem} The previous model stays loaded.")
            elif source is not None:  # no model at all (start-up): random weights instead
                self.report("error", f"{problem} Using random weights instead.")
                self.load_weights(None, config, seed, instead_of=problem)
            else:
                self.report("error", problem)

        def stopped() -> None:
            if self.runner.has_job("load"):
                return  # replaced by a newer load, not cancelled
            self.report("status", "Loading cancelled")
            self.report(
                "info",
                "Loading cancelled; the previous model stays loaded."
                if self._model is not None
                else "Loading cancelled: no model is loaded. Load one from the File menu "
                "(Load weights…, Use random weights) or Model ▸ GPT-2 from the hub.",
            )

        self.runner.submit(
            "load", job, done, failed, self.progress.emit, f"Loading {label}…", stopped
        )

    def set_device(self, name: str) -> None:
        try:
            device = resolve_device(name)
        except DeviceError as exc:
            self.report("error", str(exc))
            return
        if str(device) == self.state.device:
            return
        model = self._model

        def job(ctx: JobContext):
            if model is not None:  # else the next load goes there
                model.to(device)
            return device

        def done(device) -> None:
            self.update(st.with_device, str(device))
            self.report("info", f"Running on {self.device_label()}.")
            if self.state.result is not None:
                self.run()

        self.submit("device", job, done)

    def start(self, device_name: str, weights: str | None, preset, seed: int, run: bool) -> None:
        """The command line's device (else the CPU, with a warning), weights and run."""
        try:
            device = resolve_device(device_name)
        except DeviceError as exc:
            device = resolve_device("cpu")
            self.report("warning", f"{exc}. Running on the CPU instead.")
        self.update(st.with_device, str(device))
        self.run_after_load = run
        if weights is None and preset is None and is_cached("gpt2"):
            weights = "gpt2"  # real GPT-2 when the cache has it: no download, no wait
        self.load_weights(weights, preset, seed=seed)

    # ------------------------------------------------------------------ prompt and runs
    def set_prompt(self, text: str) -> None:
        self.update(st.with_prompt, text)

    def token_ids(self, crop: bool = False) -> list[int]:
        ids = self.tokenizer.encode(self.state.prompt_text) + list(self.state.generated)
        if crop and self.config is not None:
            ids = ids[-self.config.context_length :]
        return ids

    def run(self, crop: bool = False) -> None:
        """Run the prompt (plus any generated tokens) with the interventions in force."""
        if self._model is None:
            self.report("info", "The model is still loading.")
            return
        try:
            check_prompt_text(self.state.prompt_text)
        except PromptError as exc:
            self.report("info", f"{str(exc).capitalize()}.")
            return
        self.update(st.drop_generation_of_other_prompt)
        ids = self.token_ids(crop)
        limit = self.config.context_length
        if len(ids) > limit:
            self.promptTooLong.emit(len(ids), limit)
            return
        self._start_run(ids, self.state.prompt_text)

    def _start_run(self, ids: list[int], text: str) -> None:
        model, state = self._model, self.state
        key = RunKey(*self._run_key_of(state, tuple(ids)))
        baseline = st.baseline_for(state, key)  # the unswitched run, when the state has it

        def job(ctx: JobContext) -> RunResult:
            return run_job(model, key, baseline, ctx)

        def done(result: RunResult) -> None:
            if not self.state.is_current(result.key):
                return  # made by another model, device or set of switches
            self.update(with_result_on_tour, result, text)
            reused = baseline is not None
            self.report("status", run_summary(len(ids), result, reused, self.device_label()))

        self.submit("run", job, done, tag=key.token_ids)

    # ------------------------------------------------------------------ selection
    def select_section(self, index: int) -> None:
        self.update(st.select_section, index)

    def next_section(self) -> None:
        self.update(st.move_section, +1)

    def previous_section(self) -> None:
        self.update(st.move_section, -1)

    def move_layer(self, delta: int) -> None:
        self.update(st.move_layer, delta)

    def select_layer(self, layer: int) -> None:
        self.update(st.select_layer, layer)

    def select_head(self, head: int) -> None:
        self.update(st.select_head, head)

    def select_position(self, position: int | None) -> None:
        self.update(st.select_position, position)

    def select_pair(self, query: int, key: int | None) -> None:
        """Explain attention from key position `key` to query position `query`."""
        self.update(st.select_pair, query, key)

    def open_stage(self, key: str) -> None:
        """Show the section that holds trace key `key`."""
        index = st.section_of_stage(self.state, key)
        if index is not None:
            self.select_section(index)

    # ------------------------------------------------------------------ interventions
    @staticmethod
    def _run_key_of(state: AppState, ids: tuple[int, ...]) -> tuple:
        return state.model.serial, state.device, ids, state.interventions, state.features.edit

    # ------------------------------------------------------------------ backward step
    def run_backward(
        self,
        target: int | str | None = None,
        sgd_lr: float | None = None,
        dropout_seed: int | None = None,
    ) -> None:
        """One backward step on the current run (or the one on its way): whole-prompt loss,
        or the loss of `target` (an id, or text of one token) after the selected position;
        in evaluation mode, or with a `dropout_seed` in training mode (dropout on)."""
        if self.state.result is None:
            self.report("info", "Run a prompt first.")
            return
        try:
            if isinstance(target, str):
                target = self.tokenizer.single_id(target, "the target")
        except ValueError as exc:
            self.report("warning", str(exc))
            return
        state, model = self.state, self._model
        ids = self.runner.in_flight("run") or state.result.key.token_ids
        key = RunKey(*self._run_key_of(state, ids))
        loss_target = None if target is None else (state.position, int(target))

        def job(ctx: JobContext) -> Trace:
            return backward_job(model, key, loss_target, sgd_lr, dropout_seed, ctx)

        def done(trace: Trace) -> None:
            result = self.state.result
            if not self.state.is_current(key) or result is None or result.key.token_ids != ids:
                self.report("info", "The prompt or switches changed; press Backward again.")
                return
            self.update(st.with_gradients, trace)
            self.report(
                "status",
                f"Backward step: {backward_summary(trace.backward)} · "
                f"{trace.run_seconds * 1000:.0f} ms on {self.device_label()}",
            )

        self.submit("backward", job, done)

    def set_replay_position(self, position: int) -> None:
        """Show the backward pass as far as its `position`-th stage (0: only the loss)."""
        self.update(st.with_replay_position, position)
