"""Lossless half-size storage for causal attention weights.

Row t of a causal attention matrix is zero after column t, so a [H, T, T] block of
weights holds only T(T+1)/2 numbers per head. Take the first even E = T - T % 2 rows and
n = E / 2. The top-left n x n corner A and the bottom-right corner C (rows and columns
n..E-1) are both lower-triangular; C turned half a circle (flipped on both axes) is
upper-triangular, so the two share one n x n square, `fold`, meeting on the diagonal
(which keeps A's; C's diagonal is stored apart). The bottom-left n x n block is dense and
kept as it is, and so is the last row when T is odd. About T^2 / 2 numbers in all, made
by slicing, one flip and one `where`, so packing costs about one copy of the weights.

At T = 1024 this takes a gpt2-small trace from 1.18 GB to 0.88 GB. The gradients of the
attention weights are packed the same way: only the causal lower triangle is kept (above
the diagonal autograd's gradient is nonzero, but the mask holds those weights at zero, so
it reaches nothing).

Trace files hold each head's lower triangle row by row instead ([H, T(T+1)/2]), a layout
any reader can undo with np.tril_indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class PackedCausal:
    fold: np.ndarray  # [H, n, n]: A on and below the diagonal, C flipped above it
    bottom_left: np.ndarray  # [H, n, n]: rows n..E-1, columns 0..n-1
    c_diagonal: np.ndarray  # [H, n]: C's diagonal, flipped
    last_row: np.ndarray  # [H, T - E, T]: row T - 1 when T is odd, else empty

    @classmethod
    def from_parts(cls, parts: dict[str, Tensor]) -> PackedCausal:
        """From pack_causal's tensors, on any device: float32 numpy on the CPU."""
        return cls(**{name: t.detach().float().cpu().numpy() for name, t in parts.items()})

    @property
    def shape(self) -> tuple[int, int, int]:
        heads, n = self.fold.shape[0], self.fold.shape[1]
        size = 2 * n + self.last_row.shape[1]
        return heads, size, size

    @property
    def dtype(self) -> np.dtype:
        return self.fold.dtype

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.fold, self.bottom_left, self.c_diagonal, self.last_row))

    def unpack(self, heads: slice | int = slice(None)) -> np.ndarray:
        """The dense [H, T, T] weights (or [T, T] for one head)."""
        one = isinstance(heads, int)
        sel = slice(heads, heads + 1) if one else heads
        fold, c_diag = self.fold[sel], self.c_diagonal[sel]
        h, n = fold.shape[0], fold.shape[1]
        size = self.shape[1]
        even = 2 * n
        dense = np.zeros((h, size, size), dtype=fold.dtype)
        dense[:, :n, :n] = np.tril(fold)
        dense[:, n:even, :n] = self.bottom_left[sel]
        c_flipped = np.triu(fold, 1)
        idx = np.arange(n)
        c_flipped[:, idx, idx] = c_diag
        dense[:, n:even, n:even] = c_flipped[:, ::-1, ::-1]
        dense[:, even:, :] = self.last_row[sel]
        return dense[0] if one else dense

    def lower_triangle(self) -> np.ndarray:
        """[H, T(T+1)/2]: each head's row t, columns 0..t, for t = 0..T-1 (the file layout)."""
        rows, cols = np.tril_indices(self.shape[1])
        return self.unpack()[:, rows, cols]

    @classmethod
    def from_lower_triangle(cls, triangle: np.ndarray, size: int) -> PackedCausal:
        """The inverse of lower_triangle; triangle: [H, size(size+1)/2]."""
        dense = np.zeros((triangle.shape[0], size, size), dtype=triangle.dtype)  # [H, T, T]
        rows, cols = np.tril_indices(size)
        dense[:, rows, cols] = triangle
        return cls.from_parts(pack_causal(torch.from_numpy(dense)))


def packed_norm(parts: dict[str, Tensor]) -> Tensor:
    """The L2 norm of the lower triangle that pack_causal kept, as a 0-d tensor."""
    return torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(t) for t in parts.values()])
    )


def pack_causal(weights: Tensor) -> dict[str, Tensor]:
    """The parts of PackedCausal as tensors on the weights' own device; weights: [H, T, T]."""
    size = weights.shape[-1]
    even = size - size % 2
    n = even // 2
    lower = torch.ones(n, n, dtype=torch.bool, device=weights.device).tril()
    c_flipped = weights[:, n:even, n:even].flip(1, 2)  # [H, n, n], upper-triangular
    return {
        "fold": torch.where(lower, weights[:, :n, :n], c_flipped),
        "bottom_left": weights[:, n:even, :n].clone(),
        "c_diagonal": c_flipped.diagonal(dim1=1, dim2=2).clone(),
        "last_row": weights[:, even:, :].clone(),
    }
