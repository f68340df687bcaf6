"""The Session: the one owner of the model, the prompt, the traces and the selection.

Widgets call its setters; it runs the model through the Runner (never on the GUI thread)
and announces every change with a signal. Tests drive it without a window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal

from gpt_core import (
    Comparison,
    DeviceError,
    GPTConfig,
    GPTCoreError,
    Interventions,
    LogitLens,
    Trace,
    backward_step,
    capture,
    compare,
    count_parameters,
    get_tokenizer,
    load_model,
    logit_lens,
    pick_next_token,
    resolve_device,
)
from gpt_core.attention_stats import head_summary
from gpt_core.devices import describe_device
from gpt_core.model import GPTModel

from .steps import Selection, Step, build_steps
from .worker import JobContext, Runner


@dataclass(frozen=True)
class RunResult:
    token_ids: tuple[int, ...]
    baseline: Trace  # the run without interventions
    trace: Trace  # the run with the interventions in force (the baseline if there are none)
    comparison: Comparison | None  # trace against baseline, when interventions are on
    head_stats: dict[str, np.ndarray]  # per-head metrics of `trace`, [n_layers, n_heads] each
    seconds: float  # wall time of the job


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float = 0.0  # 0: greedy (argmax)
    top_k: int | None = None  # sample only among the k most likely tokens
    seed: int = 0  # the n-th generated token is sampled with seed + n


class Session(QObject):
    modelChanged = Signal()  # a new model (weights, config or device)
    traceChanged = Signal()  # a new run: trace, baseline and comparison
    selectionChanged = Signal()  # step, layer, head or position
    interventionsChanged = Signal()  # heads off, blocks skipped, ablation mode
    backwardChanged = Signal()  # a new backward step (or it was cleared)
    replayChanged = Signal()  # how far the replay of the backward pass has got
    lensChanged = Signal()  # a logit lens arrived
    generationChanged = Signal()  # generated tokens added or removed
    busyChanged = Signal(bool, str)  # working?, on what
    progress = Signal(object, str)  # fraction done (None: unknown), what is happening
    message = Signal(str, str)  # level ("info", "warning", "error"), text
    promptTooLong = Signal(int, int)  # tokens, the model's context length

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.tokenizer = get_tokenizer()
        self.runner = Runner(self)
        self.runner.busyChanged.connect(self.busyChanged)
        self.model: GPTModel | None = None
        self.config: GPTConfig | None = None
        self.weights_label = ""
        self.is_random = True
        self.device = torch.device("cpu")
        self.param_counts = None
        self.steps: list[Step] = []
        self.prompt_text = ""
        self._ran_text: str | None = None  # the prompt text of the current trace
        self.generated: list[int] = []
        self.generation = GenerationSettings()
        self.result: RunResult | None = None
        self.interventions = Interventions()
        self.backward: Trace | None = None
        self.replay_position = 0  # stages of the backward order the replay has reached
        self.lens: LogitLens | None = None
        self.selection = Selection()
        self.run_after_load = False  # run the prompt once the first model is in
        self._baseline_cache = None  # ((ids, device, model id), baseline trace)
        self._param_cache: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ reading
    @property
    def trace(self) -> Trace | None:
        return self.result.trace if self.result else None

    @property
    def baseline(self) -> Trace | None:
        return self.result.baseline if self.result else None

    @property
    def comparison(self) -> Comparison | None:
        return self.result.comparison if self.result else None

    @property
    def step(self) -> Step | None:
        return self.steps[self.selection.step] if self.steps else None

    @property
    def position(self) -> int:
        """The selected token position (the last one when none is chosen)."""
        trace = self.trace
        if trace is None:
            return 0
        pos = self.selection.position
        return trace.n_tokens - 1 if pos is None else min(pos, trace.n_tokens - 1)

    def device_label(self) -> str:
        return describe_device(self.device)

    def parameter(self, name: str) -> np.ndarray:
        """A copy of one parameter as float32 numpy (for views that show weights)."""
        return self._param_cache[name]

    # ------------------------------------------------------------------ model
    def load_weights(
        self, source: str | None = None, config: GPTConfig | str | None = None, seed: int = 0
    ) -> None:
        """Load weights in the background; the model in use stays until the new one is ready."""
        label = "random weights" if source is None else str(source)

        def job(ctx: JobContext):
            model, cfg = load_model(
                source, config, seed=seed, progress=ctx.report, cancel=ctx.should_stop
            )
            model.to(self.device)
            return model, cfg, _parameter_copies(model)

        def done(result) -> None:
            model, cfg, params = result
            self._set_model(model, cfg, params, source, seed)

        def failed(exc: BaseException, formatted: str) -> None:
            kept = "" if self.model is None else " The previous model stays loaded."
            self._error(f"Could not load {label}: {_reason(exc, formatted)}.{kept}")

        self.runner.submit("load", job, done, failed, self.progress.emit, label=f"Loading {label}…")

    def cancel_load(self) -> None:
        if self.runner.has_job("load"):
            self.runner.cancel("load")
            self.message.emit("info", "Loading cancelled; the previous model stays loaded.")

    def _set_model(self, model, cfg, params, source, seed) -> None:
        self.model, self.config = model, cfg
        self._param_cache = params
        self.is_random = source is None
        self.weights_label = f"random weights (seed {seed})" if source is None else str(source)
        self.param_counts = count_parameters(model)
        self.steps = build_steps(cfg)
        had_run = self.result is not None or self.run_after_load
        self.run_after_load = False
        self.interventions = Interventions(mode=self.interventions.mode)
        self.selection = Selection()
        self.result, self.backward, self.lens = None, None, None
        self._baseline_cache = None
        self.modelChanged.emit()
        self.interventionsChanged.emit()
        self.selectionChanged.emit()
        self.traceChanged.emit()
        self.backwardChanged.emit()
        if had_run and self.prompt_text.strip():
            self.run()

    def set_device(self, name: str) -> None:
        try:
            device = resolve_device(name)
        except DeviceError as exc:
            self._error(str(exc))
            return
        if device == self.device:
            return

        def job(ctx: JobContext):
            if self.model is not None:
                self.model.to(device)
            return device

        def done(device) -> None:
            self.device = device
            self._baseline_cache = None
            self.modelChanged.emit()
            self.message.emit("info", f"Running on {self.device_label()}.")
            if self.result is not None:
                self.run()

        self.runner.submit(
            "device",
            job,
            done,
            lambda exc, tb: self._error(f"Could not move the model: {exc}"),
            label="Moving the model…",
        )

    # ------------------------------------------------------------------ prompt and runs
    def set_prompt(self, text: str) -> None:
        self.prompt_text = text

    def token_ids(self, crop: bool = False) -> list[int]:
        ids = self.tokenizer.encode(self.prompt_text) + self.generated
        if crop and self.config is not None:
            ids = ids[-self.config.context_length :]
        return ids

    def run(self, crop: bool = False) -> None:
        """Run the prompt (plus any generated tokens) with the interventions in force."""
        if self.model is None:
            self.message.emit("info", "The model is still loading.")
            return
        if not self.prompt_text.strip():
            self.message.emit("info", "Type a prompt first.")
            return
        if self.generated and self._ran_text is not None and self.prompt_text != self._ran_text:
            self.generated = []  # continuations of another prompt
            self.generationChanged.emit()
        ids = self.token_ids(crop)
        limit = self.config.context_length
        if len(ids) > limit:
            self.promptTooLong.emit(len(ids), limit)
            return
        self._start_run(ids, self.prompt_text)

    def _start_run(self, ids: list[int], text: str) -> None:
        model, device, interventions = self.model, self.device, self.interventions
        cached = self._baseline_cache
        key = (tuple(ids), str(device), id(model))

        def job(ctx: JobContext) -> RunResult:
            start = time.perf_counter()
            baseline = cached[1] if cached is not None and cached[0] == key else None
            if baseline is None:
                baseline = capture(model, ids, device=device, should_stop=ctx.should_stop)
            trace, comparison = baseline, None
            if not interventions.is_empty:
                trace = capture(
                    model,
                    ids,
                    interventions,
                    device=device,
                    track_token_ids=baseline["logits/topk_ids"][:, 0],
                    should_stop=ctx.should_stop,
                )
                comparison = compare(baseline, trace)
            return RunResult(
                tuple(ids),
                baseline,
                trace,
                comparison,
                head_summary(trace),
                time.perf_counter() - start,
            )

        def done(result: RunResult) -> None:
            self._baseline_cache = (key, result.baseline)
            prompt_changed = self.result is None or self.result.token_ids != result.token_ids
            self.result = result
            self._ran_text = text
            self.lens = None
            if prompt_changed or self.backward is not None:
                self._clear_backward()
            if prompt_changed and self.selection.position is not None:
                self.selection = self.selection.with_(position=None)
                self.selectionChanged.emit()
            self.traceChanged.emit()
            self.message.emit(
                "status",
                f"{len(ids)} tokens · {result.seconds * 1000:.0f} ms on {self.device_label()}",
            )

        self.runner.submit("run", job, done, self._job_failed, label="Running the model…")

    def _clear_backward(self) -> None:
        if self.backward is not None:
            self.backward = None
            self.replay_position = 0
            self.backwardChanged.emit()
            self.replayChanged.emit()

    def set_replay_position(self, position: int) -> None:
        """Show the backward pass as far as its `position`-th stage (0: only the loss)."""
        if self.backward is None:
            return
        position = max(0, min(position, len(self.backward.backward.order)))
        if position != self.replay_position:
            self.replay_position = position
            self.replayChanged.emit()

    def step_of_stage(self, key: str) -> int | None:
        """The index of the navigator step that shows stage `key` ("logits": the output)."""
        for index, step in enumerate(self.steps):
            if key in step.keys or (key == "logits" and step.kind == "output"):
                return index
        return None

    def _job_failed(self, exc: BaseException, formatted: str) -> None:
        self._error(_reason(exc, formatted))

    def _error(self, text: str) -> None:
        self.message.emit("error", text)

    # ------------------------------------------------------------------ selection
    def select_step(self, index: int) -> None:
        if not self.steps:
            return
        index = max(0, min(index, len(self.steps) - 1))
        step = self.steps[index]
        layer = step.layer if step.layer is not None else self.selection.layer
        if (index, layer) != (self.selection.step, self.selection.layer):
            self.selection = self.selection.with_(step=index, layer=layer)
            self.selectionChanged.emit()

    def next_step(self) -> None:
        self.select_step(self.selection.step + 1)

    def previous_step(self) -> None:
        self.select_step(self.selection.step - 1)

    def step_layer(self, delta: int) -> None:
        """The same step in the next (delta = 1) or previous block."""
        step = self.step
        if step is None:
            return
        if step.layer is None:
            target_layer = (
                0
                if delta > 0 and step.kind == "embeddings"
                else (self.config.n_layers - 1 if delta < 0 else None)
            )
            kind = "ln1" if delta > 0 else "block_out"
            if target_layer is None:
                return
        else:
            target_layer, kind = step.layer + delta, step.kind
            if not 0 <= target_layer < self.config.n_layers:
                self.select_step(0 if delta < 0 else len(self.steps) - 2)
                return
        for i, s in enumerate(self.steps):
            if s.kind == kind and s.layer == target_layer:
                self.select_step(i)
                return

    def select_layer(self, layer: int) -> None:
        """Show block `layer`, keeping the kind of step when it is a block step."""
        step = self.step
        kind = step.kind if step is not None and step.layer is not None else "attention"
        for i, s in enumerate(self.steps):
            if s.kind == kind and s.layer == layer:
                self.select_step(i)
                return

    def select_head(self, head: int) -> None:
        if (
            self.config is not None
            and 0 <= head < self.config.n_heads
            and head != self.selection.head
        ):
            self.selection = self.selection.with_(head=head)
            self.selectionChanged.emit()

    def select_position(self, position: int | None) -> None:
        if position != self.selection.position:
            self.selection = self.selection.with_(position=position)
            self.lens = None
            self.selectionChanged.emit()

    # ------------------------------------------------------------------ interventions
    def set_interventions(self, interventions: Interventions) -> None:
        if interventions == self.interventions:
            return
        interventions.check(self.config)
        self.interventions = interventions
        self.interventionsChanged.emit()
        if self.result is not None:
            self._start_run(list(self.result.token_ids), self._ran_text or self.prompt_text)

    def toggle_head(self, layer: int, head: int) -> None:
        self.set_interventions(self.interventions.toggle_head(layer, head))

    def toggle_layer(self, layer: int) -> None:
        self.set_interventions(self.interventions.toggle_layer(layer))

    def set_ablation_mode(self, mode: str) -> None:
        self.set_interventions(self.interventions.with_mode(mode))

    def restore_all(self) -> None:
        self.set_interventions(Interventions(mode=self.interventions.mode))

    # ------------------------------------------------------------------ backward step
    def run_backward(self, target_token: int | None = None, sgd_lr: float | None = None) -> None:
        """One backward step on the current run: whole-prompt loss, or the loss of
        `target_token` at the selected position."""
        if self.result is None:
            self.message.emit("info", "Run a prompt first.")
            return
        ids = list(self.result.token_ids)
        target = None if target_token is None else (self.position, int(target_token))
        model, device, interventions = self.model, self.device, self.interventions

        def job(ctx: JobContext) -> Trace:
            return backward_step(
                model,
                ids,
                target,
                interventions,
                sgd_lr,
                device=device,
                should_stop=ctx.should_stop,
            )

        def done(trace: Trace) -> None:
            self.backward = trace
            self.replay_position = len(trace.backward.order)
            self.backwardChanged.emit()
            self.replayChanged.emit()
            info = trace.backward
            text = f"Backward step: loss {info.loss:.4f}"
            if info.sgd_lr is not None:
                text += (
                    f" → {info.loss_after_sgd:.4f} after one SGD step (lr {info.sgd_lr:g}); "
                    "weights restored"
                )
            self.message.emit(
                "status", f"{text} · {trace.run_seconds * 1000:.0f} ms on {self.device_label()}"
            )

        self.runner.submit("backward", job, done, self._job_failed, label="Backward step…")

    # ------------------------------------------------------------------ logit lens
    def request_logit_lens(self) -> None:
        trace, model, position = self.trace, self.model, self.position
        if trace is None or (self.lens is not None and self.lens.position == position):
            return

        def done(lens: LogitLens) -> None:
            if self.trace is trace and lens.position == self.position:
                self.lens = lens
                self.lensChanged.emit()

        self.runner.submit(
            "lens",
            lambda ctx: logit_lens(model, trace, position),
            done,
            self._job_failed,
            label="Reading the logit lens…",
        )

    # ------------------------------------------------------------------ generation
    def set_generation(self, settings: GenerationSettings) -> None:
        self.generation = settings

    def generate_next(self) -> None:
        """Append the next token (greedy, or sampled with the settings) and run again."""
        trace = self.trace
        if trace is None:
            self.message.emit("info", "Run a prompt first.")
            return
        settings = self.generation
        logits = torch.from_numpy(np.array(trace["logits/last"]))
        generator = torch.Generator().manual_seed(settings.seed + len(self.generated))
        try:
            next_id = pick_next_token(logits, settings.temperature, settings.top_k, generator)
        except ValueError as exc:
            self._error(str(exc))
            return
        self.generated.append(next_id)
        self.generationChanged.emit()
        self.run()

    def undo_generation(self) -> None:
        if self.generated:
            self.generated.pop()
            self.generationChanged.emit()
            self.run()

    def generated_text(self) -> str:
        return self.tokenizer.decode(self.generated)


def _parameter_copies(model: GPTModel) -> dict[str, np.ndarray]:
    """Small parameters (LayerNorm scale and shift) as numpy, for the views."""
    return {
        name: p.detach().float().cpu().numpy().copy()
        for name, p in model.named_parameters()
        if p.dim() == 1
    }


def _reason(exc: BaseException, formatted: str) -> str:
    """A message for the person: ours are written for them; others keep their type."""
    if isinstance(exc, (GPTCoreError, ValueError, OSError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
