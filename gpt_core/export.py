"""Writing what the app shows to files: matrices as CSV and NPY (the GUI and the headless
`export` command add PNG and SVG images on the Qt side). Writes are atomic: a file appears
complete or not at all, and a path that cannot be written raises ExportError."""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .errors import GPTCoreError


class ExportError(GPTCoreError):
    """An export path that cannot be written (missing folder, no permission, disk full)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`."""
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: the folder {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise ExportError(f"cannot write in {path.parent}: {exc.strerror or exc}") from exc
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def token_labels(token_strings: Sequence[str]) -> list[str]:
    """"position:token" labels, unique even where a token repeats."""
    return [f"{i}:{s}" for i, s in enumerate(token_strings)]


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
        raise ValueError(f"matrix {matrix.shape} does not fit {len(row_labels)} x "
                         f"{len(col_labels)} labels")
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([corner, *col_labels])
        for label, row in zip(row_labels, matrix, strict=True):
            writer.writerow([label, *(f"{v:.9g}" for v in row.tolist())])
    return Path(path)


def read_matrix_csv(path: str | os.PathLike) -> tuple[np.ndarray, list[str], list[str]]:
    """The inverse of write_matrix_csv: (matrix, row labels, column labels)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    col_labels = rows[0][1:]
    row_labels = [r[0] for r in rows[1:]]
    matrix = np.array([[float(v) for v in r[1:]] for r in rows[1:]], dtype=np.float32)
    return matrix.reshape(len(row_labels), len(col_labels)), row_labels, col_labels


def write_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)
    return Path(path)
