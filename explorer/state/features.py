"""The Features tab's state as plain data with pure transitions (part of the AppState in
app_state.py; nothing here imports Qt or runs the model).

An SAE is loaded for one model; when the model changes it is checked again, and one whose
site the new model lacks (or whose width differs) is kept but marked as not fitting, its
switches dropped. The features of the run on screen, a feature's card and a corpus scan
each carry what they were computed for and are shown only while that still holds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gpt_core import GPTConfig, GPTCoreError
from gpt_core.sae import (
    FeatureCard,
    FeatureReadout,
    FeatureRun,
    FeatureSwitches,
    ScanResult,
    SparseAutoencoder,
)
from gpt_core.sae.loading import check_fits

SCAN_CACHE = Path("~/.cache/gpt-explorer/feature-scans")  # corpus scans kept and resumed


@dataclass(frozen=True, eq=False)
class LoadedSAE:
    sae: SparseAutoencoder  # its tensors are never written: shared with the worker
    serial: int  # different for every load: results carry it
    misfit: str = ""  # why it does not fit the model in use; "" when it fits


@dataclass(frozen=True)
class FeatureEdit:
    """A run's feature switches at an SAE's site (the SAE compared by identity)."""

    sae: SparseAutoencoder
    switches: FeatureSwitches


@dataclass(frozen=True)
class FeatureKey:
    run: object  # the RunKey of the run on screen the features were read for
    sae_serial: int


@dataclass(frozen=True, eq=False)
class FeatureResult:
    key: FeatureKey
    run: FeatureRun  # readout (with the feature switches), top-1 ids, splice losses
    seconds: float


@dataclass(frozen=True, eq=False)
class CardRun:
    """A feature's logit effect (the card's activations come from the FeatureResult)."""

    sae_serial: int
    model_serial: int
    card: FeatureCard


@dataclass(frozen=True, eq=False)
class ScanRun:
    sae_serial: int
    model_serial: int
    corpus: str  # the text file or folder scanned
    result: ScanResult


@dataclass(frozen=True)
class FeatureState:
    loaded: LoadedSAE | None = None
    switches: FeatureSwitches = FeatureSwitches()  # features switched off or pushed
    result: FeatureResult | None = None  # the features of the run on screen
    feature: int | None = None  # the feature whose card is open
    card: CardRun | None = None
    scan: ScanRun | None = None

    @property
    def usable(self) -> SparseAutoencoder | None:
        """The SAE, when one is loaded and fits the model in use."""
        loaded = self.loaded
        return loaded.sae if loaded is not None and not loaded.misfit else None

    @property
    def edit(self) -> FeatureEdit | None:
        """The switches runs apply, or None when there are none (or no SAE fits)."""
        sae = self.usable
        if sae is None or self.switches.is_empty:
            return None
        return FeatureEdit(sae, self.switches)


def in_app(state, transition, *args):
    """The app state with its features part changed by `transition(features, *args)`."""
    return replace(state, features=transition(state.features, *args))


def current_key(state) -> FeatureKey | None:
    """What the features of the app state's run on screen are read for (None: no run, or
    no SAE that fits)."""
    features = state.features
    if state.result is None or features.usable is None:
        return None
    return FeatureKey(state.result.key, features.loaded.serial)


def with_sae(features: FeatureState, sae: SparseAutoencoder, config: GPTConfig) -> FeatureState:
    """A newly loaded SAE (checked against the model in use): the old one's switches,
    card and scan are gone."""
    serial = (features.loaded.serial if features.loaded else 0) + 1
    return fitted_to(FeatureState(loaded=LoadedSAE(sae, serial)), config)


def fitted_to(features: FeatureState, config: GPTConfig) -> FeatureState:
    """After a model change: the SAE checked against the new model (misfit says why it
    no longer fits; its switches go); results of the old model are gone."""
    loaded = features.loaded
    if loaded is None:
        return features
    try:
        check_fits(loaded.sae.cfg, config)
        misfit = ""
    except GPTCoreError as exc:
        misfit = str(exc)
    switches = features.switches if not misfit else FeatureSwitches()
    return FeatureState(replace(loaded, misfit=misfit), switches, feature=features.feature)


def with_switches(features: FeatureState, switches: FeatureSwitches) -> FeatureState:
    return replace(features, switches=switches)


def apply_result(state, result: FeatureResult):
    """The app state with the features of a run, if they are still of the run on screen,
    its switches and SAE (else the state as it was)."""
    if result.key != current_key(state):
        return state
    return replace(state, features=replace(state.features, result=result))


def select_feature(features: FeatureState, feature: int | None) -> FeatureState:
    card = features.card
    keep = card if card is not None and card.card.feature == feature else None
    return replace(features, feature=feature, card=keep)


def apply_card(state, card: CardRun):
    """The app state with a feature's card, if it is of the open feature, SAE and model."""
    features, model = state.features, state.model
    loaded = features.loaded
    current = (
        loaded is not None
        and card.sae_serial == loaded.serial
        and model is not None
        and card.model_serial == model.serial
        and card.card.feature == features.feature
    )
    return replace(state, features=replace(features, card=card)) if current else state


def apply_scan(state, scan: ScanRun):
    """The app state with a corpus scan, if it is of the SAE and model in use."""
    features, model = state.features, state.model
    loaded = features.loaded
    current = (
        loaded is not None
        and model is not None
        and (scan.sae_serial, scan.model_serial) == (loaded.serial, model.serial)
    )
    return replace(state, features=replace(features, scan=scan)) if current else state


# --- reading ---
HEATMAP_PER_TOKEN = 5  # each token's top features the heatmap takes
HEATMAP_COLUMNS = 64  # at most; the ones with the largest activations when there are more


def heatmap_columns(readout: FeatureReadout) -> np.ndarray:
    """The heatmap's features: the union of every token's top active features, sorted by
    id (int64 [C])."""
    ids = readout.top_ids[:, :HEATMAP_PER_TOKEN]
    acts = readout.top_acts[:, :HEATMAP_PER_TOKEN]
    chosen = np.unique(ids[acts > 0])
    if len(chosen) > HEATMAP_COLUMNS:
        peaks = np.zeros(int(chosen.max()) + 1, dtype=np.float32)
        np.maximum.at(peaks, readout.active_ids, readout.active_acts)  # each feature's peak
        chosen = np.sort(chosen[np.argsort(-peaks[chosen], kind="stable")[:HEATMAP_COLUMNS]])
    return chosen.astype(np.int64)


def heatmap_matrix(readout: FeatureReadout, columns: np.ndarray) -> np.ndarray:
    """float32 [T, C]: each token's activation of each column's feature."""
    matrix = np.zeros((readout.n_tokens, len(columns)), dtype=np.float32)
    if not len(columns):
        return matrix
    rows = np.repeat(np.arange(readout.n_tokens), np.diff(readout.active_ptr))  # each entry's
    found = np.searchsorted(columns, readout.active_ids).clip(max=len(columns) - 1)
    shown = columns[found] == readout.active_ids  # the entries of the columns' features
    matrix[rows[shown], found[shown]] = readout.active_acts[shown]
    return matrix


def top_contexts(scan: ScanResult, feature: int) -> list[tuple[float, np.ndarray, int]]:
    """Feature's top windows in the scanned corpus: (activation, the window's token ids,
    position), largest first; none where it never fired."""
    found = []
    where = scan.top_where[feature]  # [K, 2]
    for act, (window, position) in zip(scan.top_acts[feature], where, strict=True):
        if window >= 0 and act > 0:
            found.append((float(act), scan.windows[window], int(position)))
    return found
