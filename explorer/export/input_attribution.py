"""Attribution files, written the same way by the `attribute` command and the Attribution
tab: per method an .npy (float32 [T]), a CSV and a PNG of the scored tokens, and
summary.json with what was explained."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from explorer.export.render import HeatmapFigure, save_figure
from gpt_core.analysis.input_attribution import Explained, InputAttribution
from gpt_core.util.files import write_all, write_json, write_matrix_csv, write_npy


def export_attribution(
    result: InputAttribution, explained: Explained, ids: list[int], labels: list[str], folder: Path
) -> list[Path]:
    """Write every method's scores into `folder` (which must exist); the paths written, or
    PartialExport naming what was and was not."""
    files = []
    for method, scores in result.scores.items():
        signed = bool((scores < 0).any())
        figure = HeatmapFigure(scores[None], (method,), tuple(labels), method, "", "token", signed)
        files += [
            (folder / f"{method}.npy", lambda p, s=scores: write_npy(p, s.astype(np.float32))),
            (folder / f"{method}.csv",
             lambda p, m=method, s=scores: write_matrix_csv(p, s[None], [m], labels, "method")),
            (folder / f"{method}.png", lambda p, f=figure: save_figure(p, [f])),
        ]  # fmt: skip
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
    files.append((folder / "summary.json", lambda path: write_json(path, summary)))
    return write_all(files)
