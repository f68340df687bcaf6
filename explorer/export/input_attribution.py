"""Attribution files, written the same way by the `attribute` command and the Attribution
tab: per method an .npy (float32 [T]), a CSV and a PNG of the scored tokens, and
summary.json with what was explained."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from explorer.export.render import HeatmapFigure, save_figure
from gpt_core import ExportError
from gpt_core.analysis.input_attribution import Explained, InputAttribution
from gpt_core.util.atomic import atomic_path
from gpt_core.util.files import json_text, write_matrix_csv, write_npy


def export_attribution(
    result: InputAttribution, explained: Explained, ids: list[int], labels: list[str], folder: Path
) -> list[Path]:
    """Write every method's scores into `folder` (which must exist); the paths written."""
    written = []
    for method, scores in result.scores.items():
        written.append(write_npy(folder / f"{method}.npy", scores.astype(np.float32)))
        written.append(
            write_matrix_csv(folder / f"{method}.csv", scores[None], [method], labels, "method")
        )
        signed = bool((scores < 0).any())
        figure = HeatmapFigure(scores[None], (method,), tuple(labels), method, "", "token", signed)
        written.append(save_figure(folder / f"{method}.png", [figure]))
    summary = {
        "ids": list(ids),
        "target_id": explained.target,
        "foil_id": explained.foil,
        "position": explained.position,
        "value": result.value,
        "baseline_value": result.baseline_value,
        "integrated_gradients_completeness_gap": result.completeness_gap,
        "methods": list(result.scores),
    }
    with atomic_path(folder / "summary.json", ExportError) as tmp:
        tmp.write_text(json_text(summary), encoding="utf-8")
    written.append(folder / "summary.json")
    return written
