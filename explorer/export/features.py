"""An SAE's features of a prompt, written the same way by the `features` command and the
Features tab: top_ids.npy (int64 [T, K]), top_acts.npy (float32 [T, K]), l0.npy (int64 [T]),
recon_error.npy (float32 [T], ‖x − x̂‖² / d_in), summary.json, and feature_F.json per card."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gpt_core.sae import FeatureCard, FeatureRun, SparseAutoencoder
from gpt_core.util.files import write_all, write_json, write_npy


def features_summary(run: FeatureRun, sae: SparseAutoencoder) -> dict:
    """summary.json's contents: the SAE, how well it reconstructs, the losses."""
    readout, losses = run.readout, run.losses
    summary = {
        "sae": sae.source,
        "hook": sae.hook_name,
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "architecture": sae.architecture,
        "n_tokens": readout.n_tokens,
        "explained_variance": readout.explained_variance,
        "mean_l0": float(readout.l0.mean()),
    }
    if losses is not None:
        summary.update(
            loss_clean=losses.clean,
            loss_spliced=losses.spliced,
            loss_zero=losses.zero,
            loss_recovered=losses.recovered,
        )
    if not readout.switches.is_empty:
        summary["switches"] = readout.switches.to_dict()
        summary["loss_changed"] = None if losses is None else losses.changed
        summary["top1_ids"] = run.top1_ids.tolist()
    return summary


def export_features(
    run: FeatureRun, sae: SparseAutoencoder, cards: Iterable[FeatureCard], folder: Path
) -> list[Path]:
    """Write the run's files into `folder` (which must exist); the paths written, or
    PartialExport naming what was and was not."""
    readout = run.readout
    arrays = {
        "top_ids": readout.top_ids.astype(np.int64),
        "top_acts": readout.top_acts.astype(np.float32),
        "l0": readout.l0.astype(np.int64),
        "recon_error": readout.recon_error.astype(np.float32),
    }
    files = [(folder / f"{name}.npy", lambda p, a=a: write_npy(p, a)) for name, a in arrays.items()]
    summary = features_summary(run, sae)
    files.append((folder / "summary.json", lambda p: write_json(p, summary)))
    for card in cards:
        data = card.to_dict()
        files.append((folder / f"feature_{card.feature}.json", lambda p, d=data: write_json(p, d)))
    return write_all(files)
