"""Writing what the app shows to files: matrices as CSV and NPY (the GUI and the headless
`export` command add PNG and SVG images on the Qt side). Writes are atomic: a file appears
complete or not at all, and a path that cannot be written raises ExportError."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ExportError
from .atomic import atomic_path


def write_matrix_csv(
    path: str | os.PathLike,
    matrix: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    corner: str = "",
) -> Path:
    """A 2-D array as CSV: a header row of column labels, each row led by its label.
    Values are written with 9 significant digits, enough to read float32 back exactly."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"matrix {matrix.shape} does not fit {len(row_labels)} x {len(col_labels)} labels"
        )
    with atomic_path(path, ExportError) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([corner, *col_labels])
        for label, row in zip(row_labels, matrix, strict=True):
            writer.writerow([label, *(f"{v:.9g}" for v in row.tolist())])
    return Path(path)


def write_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    with atomic_path(path, ExportError) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)
    return Path(path)
