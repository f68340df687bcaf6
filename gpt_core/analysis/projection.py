"""Two-dimensional projections of embedding vectors for plotting: principal component
analysis by a float64 SVD of the centred vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Projection:
    coords: np.ndarray  # [N, 2] float32: each vector on the first two principal axes
    explained: np.ndarray  # [2] float64: the share of the total variance each axis holds


def pca_2d(vectors: np.ndarray) -> Projection:
    """The vectors [N, D] on their two directions of largest variance. Each axis is signed
    so that its largest loading is positive: the same vectors always give the same picture."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError("PCA needs a finite [N, D] array")
    x = x - x.mean(axis=0)  # [N, D]
    _, singular, axes = np.linalg.svd(x, full_matrices=False)  # axes: [min(N, D), D]
    axes = axes[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * signs[:, None]
    coords = np.zeros((len(x), 2))
    coords[:, : len(axes)] = x @ axes.T  # [N, ≤2]
    variance = singular**2
    explained = np.zeros(2)
    if variance.sum() > 0:
        explained[: len(axes)] = variance[:2] / variance.sum()
    return Projection(coords.astype(np.float32), explained)
