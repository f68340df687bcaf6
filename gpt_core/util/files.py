"""Writing what the app shows to files: matrices as CSV and NPY (the GUI and the headless
`export` command add PNG and SVG images on the Qt side). Writes are atomic: a file appears
complete or not at all, and a path that cannot be written raises ExportError; a set of
files is written by write_all, which says exactly which files were written and which not."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
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


def write_json(path: str | os.PathLike, data) -> Path:
    """`data` as indented JSON; JSON has no NaN or Infinity, so a non-finite number (from
    broken weights) is written as null."""
    text = json.dumps(_finite_or_none(data), indent=1, allow_nan=False) + "\n"
    with atomic_path(path, ExportError) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _finite_or_none(data):
    if isinstance(data, (float, np.floating)):
        return float(data) if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite_or_none(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite_or_none(value) for value in data]
    return data


class PartialExport(ExportError):
    """Some files of an export could not be written; the message names every file that
    failed, with why, and every file that was written."""

    def __init__(self, written: list[Path], failures: list[ExportError]):
        self.written, self.failures = written, failures
        done = f"written: {', '.join(p.name for p in written)}" if written else "nothing written"
        reasons = dict.fromkeys(map(str, failures))  # a folder that refuses all says it once
        super().__init__(f"{'; '.join(reasons)}; {done}")


def write_all(files: Iterable[tuple[Path, Callable[[Path], object]]]) -> list[Path]:
    """Call each writer with its path, going on past a failed file (one file's trouble,
    such as a name taken by a folder, should not cost the others); PartialExport if any
    failed, else the paths written. An interruption carries the paths written as `.written`."""
    written, failures = [], []
    for path, write in files:
        try:
            write(path)
        except ExportError as exc:
            failures.append(exc)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: say what is already there
            exc.written = written
            raise
        else:
            written.append(Path(path))
    if failures:
        raise PartialExport(written, failures)
    return written
