"""The app state as plain, immutable data, and the pure transitions between states.

Nothing here imports Qt or runs the model: the Session (session.py) holds one AppState,
replaces it through these functions, and tells the widgets what changed. Tests drive the
transitions directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from explorer.state.analysis import AttributionRun, AttributionSettings, SublayerLensGrid
from explorer.state.features import FeatureEdit, FeatureState, fitted_to
from explorer.state.sampling import Draw, GenerationSettings
from gpt_core import Comparison, GPTConfig, Interventions, LogitLens, ParameterCount, Trace
from gpt_core.analysis import Projection
from gpt_core.analysis.patching import PatchResult
from gpt_core.probe.sections import Section, build_sections
from gpt_core.probe.stages import residual_stream


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """What the app knows about the model in use, as data (the module stays in the Session)."""

    config: GPTConfig
    label: str  # "random weights (seed 0)", a path or a hub id
    is_random: bool  # seeded random weights, not trained ones
    counts: ParameterCount  # parameters per module
    small_parameters: Mapping[str, np.ndarray]  # 1-D parameters (LayerNorm scale, shift)
    serial: int  # different for every load: results carry it to show which model made them
    non_finite: Mapping[str, int] = field(default_factory=dict)  # parameter -> NaN/Inf count
    head_types: Mapping[str, np.ndarray] = field(default_factory=dict)  # induction, … [L, H]
    repeated_sequence_ids: tuple[int, ...] = ()  # the repeated sequence head_types were measured on
    positions_pca: Projection | None = None  # every position embedding on its 2 main axes
    instead_of: str = ""  # why these weights stand in for the ones asked for, if they do
    sections: tuple[Section, ...] = field(init=False)  # what the navigator lists

    def __post_init__(self) -> None:
        object.__setattr__(self, "sections", build_sections(self.config))


@dataclass(frozen=True)
class RunKey:
    """What a run's result depends on; a result is shown only while this still holds."""

    model_serial: int
    device: str
    token_ids: tuple[int, ...]
    interventions: Interventions
    features: FeatureEdit | None = None  # feature switches at an SAE's site


@dataclass(frozen=True, eq=False)
class RunResult:
    key: RunKey
    baseline: Trace  # the run without interventions
    trace: Trace  # the run with the interventions in force (the baseline if there are none)
    comparison: Comparison | None  # trace against baseline, when interventions are on
    head_stats: Mapping[str, np.ndarray]  # per-head metrics of `trace`, [n_layers, n_heads]
    seconds: float  # wall time of the job


@dataclass(frozen=True)
class PatchSettings:
    """A patching experiment as the Patching tab describes it."""

    clean_text: str = ""
    corrupted_text: str = ""
    answer: str = ""  # token text; "" for the clean run's top-1
    distractor: str = ""  # token text; "" for the corrupted run's top-1 (or second)
    metric: str = "logit_diff"  # a key of gpt_core's METRICS
    position: int | None = None  # the metric's position; None for the last
    direction: str = "denoise"
    sweeps: tuple[str, ...] = ("resid", "heads")
    method: str = "exact"  # "exact", "attribution" or "both"
    receiver: str = ""  # path patching's receiver ("logits", "L.H.q"); "" for none


@dataclass(frozen=True, eq=False)
class PatchRun:
    """A patching result with what it was computed for."""

    model_serial: int
    settings: PatchSettings
    result: PatchResult
    seconds: float


@dataclass(frozen=True)
class Selection:
    section: int = 0  # index into the model's sections
    layer: int = 0  # the block the attention views show (follows block sections)
    head: int = 0  # the attention head shown large
    position: int | None = None  # selected token position; None: the last
    key: int | None = None  # the key position attention is explained for (query: position);
    # None: the key the selected head weights most from the query


@dataclass(frozen=True)
class TourState:
    open: bool = False  # the tour panel is shown
    step: int = 0  # the step shown, or the one the tour resumes at (tour.py's TOUR_STEPS)


@dataclass(frozen=True)
class AppState:
    model: LoadedModel | None = None
    device: str = "cpu"  # where the model runs: "cpu", "cuda", "cuda:1"
    prompt_text: str = ""  # what the prompt box holds
    ran_text: str | None = None  # the prompt text of the current result
    generated: tuple[int, ...] = ()  # tokens generated after the prompt
    generation: GenerationSettings = GenerationSettings()
    draws: tuple[Draw, ...] = ()  # how each generated token was drawn
    interventions: Interventions = Interventions()
    selection: Selection = Selection()
    result: RunResult | None = None
    gradients: Trace | None = None  # the backward step's run, for the current result
    replay_position: int = 0  # stages of the backward order the replay has reached
    logit_lens: LogitLens | None = None  # of the current trace, at logit_lens.position
    patching: PatchSettings = PatchSettings()
    patch_run: PatchRun | None = None  # the result of `patching` on this model
    sublayer_lens_target: int | None = None  # the token whose rank the lens grid gives
    sublayer_lens: SublayerLensGrid | None = None  # the lens at every sub-layer, read so far
    attribution: AttributionSettings = AttributionSettings()
    attribution_run: AttributionRun | None = None
    tour: TourState = TourState()  # the guided tour (tour.py)
    features: FeatureState = FeatureState()  # the SAE, its switches, features, card, scan

    # --- reading ---
    @property
    def config(self) -> GPTConfig | None:
        return self.model.config if self.model else None

    @property
    def sections(self) -> tuple[Section, ...]:
        return self.model.sections if self.model else ()

    @property
    def section(self) -> Section | None:
        return self.sections[self.selection.section] if self.sections else None

    @property
    def trace(self) -> Trace | None:
        return self.result.trace if self.result else None

    @property
    def position(self) -> int:
        """The selected token position (the last one when none is chosen)."""
        trace = self.trace
        if trace is None:
            return 0
        pos = self.selection.position
        return trace.n_tokens - 1 if pos is None else min(pos, trace.n_tokens - 1)

    @property
    def key_position(self) -> int | None:
        """The selected key position, within the prompt (None: none chosen)."""
        trace, key = self.trace, self.selection.key
        return None if trace is None or key is None else min(key, trace.n_tokens - 1)

    def is_current(self, key: RunKey) -> bool:
        """Does a result computed under `key` belong to this state?"""
        return (
            self.model is not None
            and key.model_serial == self.model.serial
            and key.device == self.device
            and key.interventions == self.interventions
            and key.features == self.features.edit
        )


# --- the model ---
def with_model(state: AppState, model: LoadedModel) -> AppState:
    """A new model: switches, selection and results of the old one are gone. Its serial
    follows the old model's, so results carry which load made them."""
    serial = (state.model.serial if state.model else 0) + 1
    return replace(
        state,
        model=replace(model, serial=serial),
        interventions=Interventions(mode=state.interventions.mode),
        selection=Selection(),
        result=None,
        gradients=None,
        replay_position=0,
        logit_lens=None,
        patch_run=None,
        sublayer_lens_target=None,  # token ids of another model's vocabulary may not exist
        sublayer_lens=None,
        attribution=replace(state.attribution, target=None, foil=None, baseline_token=None),
        attribution_run=None,
        features=fitted_to(state.features, model.config),
    )


def with_device(state: AppState, device: str) -> AppState:
    return replace(state, device=device)


# --- runs ---
def with_result(state: AppState, result: RunResult, text: str) -> AppState:
    """A run's result; a different prompt forgets the selected position. The backward
    step of an earlier run is dropped, as is the logit lens."""
    prompt_changed = state.result is None or state.result.key.token_ids != result.key.token_ids
    selection = state.selection
    if prompt_changed:
        selection = replace(selection, position=None, key=None)
    return replace(
        state,
        result=result,
        ran_text=text,
        selection=selection,
        gradients=None,
        replay_position=0,
        logit_lens=None,
    )


def baseline_for(state: AppState, key: RunKey) -> Trace | None:
    """The run without switches of `key`'s tokens on the same model, if the state holds it:
    switching a head then reruns only the switched run."""
    held = state.result.key if state.result else None
    same = held is not None and (held.model_serial, held.device, held.token_ids) == (
        key.model_serial,
        key.device,
        key.token_ids,
    )
    return state.result.baseline if same else None


def with_gradients(state: AppState, gradients: Trace) -> AppState:
    return replace(state, gradients=gradients, replay_position=len(gradients.backward.order))


def with_replay_position(state: AppState, position: int) -> AppState:
    if state.gradients is None:
        return state
    position = max(0, min(position, len(state.gradients.backward.order)))
    return replace(state, replay_position=position)


def with_patch_settings(state: AppState, settings: PatchSettings) -> AppState:
    """New settings; a result of other settings is no longer shown."""
    run = state.patch_run
    return replace(
        state, patching=settings, patch_run=run if run and run.settings == settings else None
    )


def with_patch_run(state: AppState, run: PatchRun) -> AppState:
    """A patching result, if it still belongs to this model and these settings."""
    current = (
        state.model is not None
        and run.model_serial == state.model.serial
        and run.settings == state.patching
    )
    return replace(state, patch_run=run) if current else state


def with_logit_lens(state: AppState, trace: Trace, lens: LogitLens) -> AppState:
    """The lens, if it is still of the current trace."""
    return replace(state, logit_lens=lens) if state.trace is trace else state


def logit_lens_wanted(state: AppState) -> int | None:
    """The position whose logit lens the open view shows and the state lacks, if any."""
    section = state.section
    if section is None or section.spec.view != "output" or state.trace is None:
        return None
    lens = state.logit_lens
    return None if lens is not None and lens.position == state.position else state.position


def with_interventions(state: AppState, interventions: Interventions) -> AppState:
    return replace(state, interventions=interventions)


# --- the prompt and generation ---
def with_prompt(state: AppState, text: str) -> AppState:
    return replace(state, prompt_text=text)


def drop_generation_of_other_prompt(state: AppState) -> AppState:
    """Before a run: generated tokens continue the prompt they were made for, so a new
    prompt text drops them."""
    if state.generated and state.ran_text is not None and state.prompt_text != state.ran_text:
        return replace(state, generated=(), draws=())
    return state


def with_generation_settings(state: AppState, settings: GenerationSettings) -> AppState:
    return replace(state, generation=settings)


def with_drawn_token(state: AppState, draw: Draw) -> AppState:
    """One more generated token."""
    return replace(state, generated=(*state.generated, draw.token_id), draws=(*state.draws, draw))


def without_last_token(state: AppState) -> AppState:
    return replace(state, generated=state.generated[:-1], draws=state.draws[:-1])


def adopt_generated(state: AppState, generated_text: str) -> AppState:
    """The generated text becomes part of the prompt the person can edit."""
    text = state.prompt_text + generated_text
    return replace(state, prompt_text=text, generated=(), draws=())


# --- selection and navigation ---
def select_section(state: AppState, index: int) -> AppState:
    sections = state.sections
    if not sections:
        return state
    index = max(0, min(index, len(sections) - 1))
    layer = sections[index].layer
    layer = state.selection.layer if layer is None else layer
    return replace(state, selection=replace(state.selection, section=index, layer=layer))


def move_section(state: AppState, delta: int) -> AppState:
    """The next (delta = 1) or previous (-1) section in data-flow order."""
    return select_section(state, state.selection.section + delta)


def find_section(state: AppState, name: str, layer: int | None) -> int | None:
    for index, section in enumerate(state.sections):
        if section.name == name and section.layer == layer:
            return index
    return None


def move_layer(state: AppState, delta: int) -> AppState:
    """The same section in the next (delta = 1) or previous (-1) block. Before the first
    block (the tokens, the embeddings), forward goes to block 0; after the last, back goes
    to the last block; past the ends it goes to the embeddings or the final norm."""
    section, config = state.section, state.config
    if section is None:
        return state
    first, last = _block_bounds(state)
    if section.layer is None:
        before = state.selection.section < first
        if before and delta > 0:
            return select_section(state, first)
        if not before and delta < 0:
            return select_section(state, last - 1)
        return state
    layer = section.layer + delta
    if not 0 <= layer < config.n_layers:
        return select_section(state, first - 1 if delta < 0 else last)
    return select_section(state, find_section(state, section.name, layer))


def _block_bounds(state: AppState) -> tuple[int, int]:
    """The index of the first block section, and one past the last."""
    inside = [i for i, s in enumerate(state.sections) if s.layer is not None]
    return inside[0], inside[-1] + 1


def select_layer(state: AppState, layer: int) -> AppState:
    """Show block `layer`, keeping the kind of section when it is a block section (else
    its attention)."""
    section = state.section
    name = section.name if section is not None and section.layer is not None else "attention"
    index = find_section(state, name, layer)
    return state if index is None else select_section(state, index)


def select_head(state: AppState, head: int) -> AppState:
    config = state.config
    if config is None or not 0 <= head < config.n_heads:
        return state
    return replace(state, selection=replace(state.selection, head=head))


def select_position(state: AppState, position: int | None) -> AppState:
    return replace(state, selection=replace(state.selection, position=position))


def select_pair(state: AppState, query: int, key: int | None) -> AppState:
    """A query and a key position: attention explained from `key` to `query`."""
    return replace(state, selection=replace(state.selection, position=query, key=key))


def section_of_stage(state: AppState, key: str) -> int | None:
    """The index of the section whose view shows trace key `key` (also "logits")."""
    for index, section in enumerate(state.sections):
        if key in section.keys:
            return index
    return None


# --- the residual stream's depth rows (embeddings, then each block's middle and output) ---
def depth_row(state: AppState, section: Section) -> int:
    """The row of the residual stream that a residual or embeddings section shows."""
    keys = [key for key, _ in residual_stream(state.config.n_layers)]
    return keys.index(section.shape_key)
