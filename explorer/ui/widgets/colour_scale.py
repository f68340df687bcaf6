"""Colour scales for non-negative heatmaps such as attention weights: the fixed 0–1, auto
(0 to the largest value in view, so a zoomed-in corner uses all the colours) and
logarithmic (log₁₀ of the value, LOG_DECADES decades below the largest in view: at
T ≈ 1000 most weights are near 1/T and vanish on a linear scale)."""

from __future__ import annotations

import numpy as np

SCALES = {
    "fixed": "0 – 1",
    "auto": "0 – visible max",
    "log": "log₁₀",
}
LOG_DECADES = 4


def visible_max(visible: np.ndarray) -> float:
    """The largest finite value in view (1 when there is none, or it is not positive)."""
    finite = visible[np.isfinite(visible)]
    high = float(finite.max()) if finite.size else 1.0
    return high if high > 0 else 1.0


def scaled(
    matrix: np.ndarray, visible: np.ndarray, scale: str
) -> tuple[np.ndarray, tuple[float, float]]:
    """The image to draw for `matrix` and its colour levels, on `scale` (a key of SCALES),
    with `visible` the part of the matrix in view."""
    if scale == "fixed":
        return matrix, (0.0, 1.0)
    high = visible_max(visible)
    if scale == "auto":
        return matrix, (0.0, high)
    if scale == "log":
        floor = high * 10.0**-LOG_DECADES
        with np.errstate(invalid="ignore"):  # NaN stays NaN: the overlay marks it
            image = np.log10(np.maximum(matrix, floor))
        return image, (float(np.log10(floor)), float(np.log10(high)))
    raise ValueError(f"unknown colour scale {scale!r}; known: {', '.join(SCALES)}")
