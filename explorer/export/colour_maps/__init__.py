"""The two colour maps every heatmap uses, on screen and in exported files alike: viridis for
values that are never negative and CET-D1A (white at 0) for signed ones. The tables are
pyqtgraph's own (SOURCES.txt), read here without importing pyqtgraph, so that the headless
commands draw exactly the window's colours without loading a widget toolkit."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import numpy as np

NON_FINITE_RGBA = (255, 0, 255, 255)  # magenta: NaN or Inf, a colour neither map uses
SEQUENTIAL = "viridis"  # non-negative data: attention weights, norms, probabilities
DIVERGING = "CET-D1A"  # signed data: activations, gradients (white at 0)


@cache
def lookup_table(signed: bool) -> np.ndarray:
    """[256, 3] uint8: the colour of each of 256 steps from the low level to the high."""
    name = DIVERGING if signed else SEQUENTIAL
    text = files(__package__).joinpath(f"{name}.csv").read_text()
    rgb = np.loadtxt(text.splitlines(), delimiter=",", comments=";")  # [256, 3] in 0..1
    table = (rgb * 255 + 0.5).astype(np.uint8)  # rounded as pyqtgraph rounds its tables
    table.flags.writeable = False
    return table


def value_levels(matrix: np.ndarray, signed: bool) -> tuple[float, float]:
    """Colour-scale limits: symmetric about 0 for signed data, 0..max otherwise."""
    finite = matrix[np.isfinite(matrix)] if matrix.size else matrix
    if finite.size == 0:
        return (-1.0, 1.0) if signed else (0.0, 1.0)
    if signed:
        bound = float(np.max(np.abs(finite))) or 1.0
        return -bound, bound
    low, high = float(np.min(finite)), float(np.max(finite))
    low = min(low, 0.0)
    return (low, high if high > low else low + 1.0)
