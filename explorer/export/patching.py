"""Patching results as files, shared by the window and the headless `patch` command:
per sweep the raw metric values (.npy), a CSV with labelled rows and columns and a heatmap
image (.png/.svg) of the normalised values, and summary.json with the set-up, the clean
and corrupted metric and the direct logit attribution. Every write is atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from explorer.export.render import HeatmapFigure, save_figure
from gpt_core import ExportError, get_tokenizer
from gpt_core.analysis.patching import PATH_SWEEP, SWEEPS, PatchResult, Sweep
from gpt_core.analysis.patching.sweeps import LAYER_HEAD_POSITION
from gpt_core.util.files import write_all, write_json, write_matrix_csv, write_npy

FORMATS = ("npy", "csv", "png", "svg")


def sweep_table(clean_ids, sweep: Sweep, values: np.ndarray):
    """(matrix, row labels, column labels, row axis, column axis) of one sweep's array:
    [L, T] and [L, H] as they are, [L, H, T] with one row per head; positions are labelled
    with the clean prompt's tokens."""
    tokens = get_tokenizer().displays(list(clean_ids)[: values.shape[-1]])
    n_layers, n_heads = values.shape[0], values.shape[1]
    labels = {
        "layer": [f"L{layer}" for layer in range(n_layers)],
        "head": [f"H{head}" for head in range(n_heads)],
        "position": [f"{p}:{t}" for p, t in enumerate(tokens)],
    }
    if sweep.layout == LAYER_HEAD_POSITION:
        rows = [f"L{layer}H{head}" for layer in range(n_layers) for head in range(n_heads)]
        return values.reshape(n_layers * n_heads, -1), rows, labels["position"], "head", "position"
    rows, cols = sweep.layout
    return values, labels[rows], labels[cols], rows, cols


def export_patching(result: PatchResult, folder: str | Path, formats=FORMATS) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"cannot write to {folder}: no such folder")
    arrays = dict(result.exact)
    arrays |= {f"attribution_{name}": values for name, values in result.attribution.items()}
    if result.path is not None:
        arrays["path"] = result.path
    files = [
        file
        for stem, values in arrays.items()
        for file in _sweep_files(result, stem, values, folder, formats)
    ]
    files.append((folder / "summary.json", lambda path: _write_summary(result, path)))
    return write_all(files)


def _sweep_files(result, stem: str, values: np.ndarray, folder: Path, formats):
    """(path, writer) for each format of one sweep."""
    name = stem.removeprefix("attribution_")
    sweep = PATH_SWEEP if name == "path" else SWEEPS[name]
    matrix, rows, cols, row_axis, col_axis = sweep_table(result.clean_ids, sweep, values)
    # an attribution is a change of the metric: drawn as a metric value
    drawn = result.baseline + matrix if stem.startswith("attribution_") else matrix
    shown = drawn if result.same_metric else result.normalised(drawn)
    what = "raw metric" if result.same_metric else "0 = corrupted, 1 = clean"
    # NaN (no path into the receiver) stays NaN: drawn magenta, not as "no effect"
    figure = HeatmapFigure(
        shown, tuple(rows), tuple(cols), f"{_title(stem)} · {what}", row_axis, col_axis, True
    )
    writers = {
        "npy": lambda path: write_npy(path, values.astype(np.float32)),
        "csv": lambda path: write_matrix_csv(
            path, matrix, rows, cols, corner=f"{row_axis} \\ {col_axis}"
        ),
        "png": lambda path: save_figure(path, [figure]),
        "svg": lambda path: save_figure(path, [figure]),
    }
    return [(folder / f"{stem}.{fmt}", writers[fmt]) for fmt in formats]


def _title(stem: str) -> str:
    if stem == "path":
        return "path patching"
    if stem.startswith("attribution_"):
        return f"{stem.removeprefix('attribution_')} (attribution patching)"
    return f"{stem} ({', '.join(SWEEPS[stem].layout)})"


def _write_summary(result: PatchResult, path: Path) -> Path:
    metric = result.metric
    summary = {
        "clean_ids": result.clean_ids.tolist(),
        "corrupted_ids": result.corrupted_ids.tolist(),
        "answer_id": metric.answer,
        "distractor_id": metric.distractor,
        "metric": metric.kind,
        "position": metric.position,
        "direction": result.direction,
        "clean_metric": result.clean_value,
        "corrupted_metric": result.corrupted_value,
        "sweeps": sorted(result.exact),
        "attribution": sorted(result.attribution),
        "receiver": result.receiver.describe() if result.receiver else None,
        "direct_logit_attribution": dict(result.logit_attribution),
    }
    return write_json(path, summary)
