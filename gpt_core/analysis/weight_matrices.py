"""The weight matrices of a section, read for drawing: each one the way the book's math reads
it, with its shape, parameter count and Frobenius norm, and its values averaged over blocks
of cells so that a 50,257 × 768 matrix is drawn from at most MAX_CELLS × MAX_CELLS numbers.

A torch Linear stores its weight as [out, in] and computes x @ W.T. The registry's
operations read "[T, 768] @ W_query [768, 768]" and "[T, 768] @ [768, 3072]", so a
Linear's weight is shown transposed, [in, out]: rows are the features it reads, columns the
ones it writes. Head h of W_query, W_key and W_value then owns columns h·d_head …
(h + 1)·d_head − 1 (the features it writes), and of out_proj the same rows (the features
of the concatenated context it reads). Embeddings are shown as stored: one row per token id
or position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..model.config import GPTConfig

MAX_CELLS = 768  # rows and columns drawn at most: 50,257 × 768 is drawn 762 × 768
HEAD_COLUMNS, HEAD_ROWS = "columns", "rows"  # where head h's slice lies, as shown


@dataclass(frozen=True)
class MatrixEntry:
    """One weight matrix of a section, as the table below lists it."""

    short_name: str  # the book's name: "W_query"
    parameter: str  # the model's: "trf_blocks.{layer}.att.W_query.weight"
    linear: bool  # a Linear's [out, in] weight, shown transposed as [in, out] (x @ W.T)
    heads_along: str | None = None  # HEAD_COLUMNS or HEAD_ROWS as shown; None: no heads
    rows_are: str = ""  # what a row stands for, where it is not a Linear's input feature

    def orientation(self) -> str:
        """How the matrix is shown against how it is stored, in a few words."""
        if self.linear:
            return "stored [out, in], shown as W.T [in, out]: x @ W.T"
        return f"shown as stored: {self.rows_are}"


def _attention(name: str, heads_along: str) -> MatrixEntry:
    return MatrixEntry(name, f"trf_blocks.{{layer}}.att.{name}.weight", True, heads_along)


# Section name (a key of the registry's SECTIONS) -> its weight matrices, in data-flow order.
SECTION_MATRICES: dict[str, tuple[MatrixEntry, ...]] = {
    "embeddings": (
        MatrixEntry("tok_emb", "tok_emb.weight", False, rows_are="row i is token id i's vector"),
        MatrixEntry("pos_emb", "pos_emb.weight", False, rows_are="row t is position t's vector"),
    ),
    "attention": (
        _attention("W_query", HEAD_COLUMNS),
        _attention("W_key", HEAD_COLUMNS),
        _attention("W_value", HEAD_COLUMNS),
        _attention("out_proj", HEAD_ROWS),
    ),
    "ff": (
        MatrixEntry("W_1", "trf_blocks.{layer}.ff.layers.0.weight", True),
        MatrixEntry("W_2", "trf_blocks.{layer}.ff.layers.2.weight", True),
    ),
    "output": (MatrixEntry("out_head", "out_head.weight", True),),
}


def section_matrices(section: str) -> tuple[MatrixEntry, ...]:
    """The weight matrices the section `section` ("attention") computes with; () for none."""
    return SECTION_MATRICES.get(section, ())


@dataclass(frozen=True, eq=False)
class WeightMatrix:
    """One weight matrix as it is drawn: block averages of the full matrix, and the facts
    of the full matrix itself."""

    entry: MatrixEntry
    parameter: str  # the model's name, block filled in: "trf_blocks.3.att.W_query.weight"
    shape: tuple[int, int]  # the full matrix as shown ([in, out] for a Linear)
    cells: np.ndarray  # float32 [ceil(rows / factor[0]), ceil(cols / factor[1])]
    factor: tuple[int, int]  # rows and columns of the full matrix averaged into one cell
    n_parameters: int
    norm: float  # Frobenius norm of the full matrix
    head_dim: int  # features per head (for head_span)

    @property
    def downsampled(self) -> bool:
        return self.factor != (1, 1)

    def scale_text(self) -> str:
        """ "shown 1:1" or "downsampled 66× × 1×" (rows × columns)."""
        if not self.downsampled:
            return "shown 1:1"
        return f"downsampled {self.factor[0]}× × {self.factor[1]}×"

    def head_span(self, head: int) -> tuple[str, int, int] | None:
        """Where head `head` lies in the full matrix as shown: (HEAD_COLUMNS or HEAD_ROWS,
        first index, one past the last); None for a matrix without heads."""
        if self.entry.heads_along is None:
            return None
        return self.entry.heads_along, head * self.head_dim, (head + 1) * self.head_dim

    def cell_span(self, head: int) -> tuple[str, float, float] | None:
        """head_span in the drawn cells' coordinates (a cell is 1 wide; a span that ends
        inside a cell ends part-way through it)."""
        span = self.head_span(head)
        if span is None:
            return None
        axis, start, stop = span
        factor = self.factor[1] if axis == HEAD_COLUMNS else self.factor[0]
        return axis, start / factor, stop / factor

    def cell_range(self, row: int, col: int) -> tuple[range, range]:
        """The rows and columns of the full matrix that drawn cell (row, col) averages."""
        (rows, cols), (fr, fc) = self.shape, self.factor
        return (
            range(row * fr, min((row + 1) * fr, rows)),
            range(col * fc, min((col + 1) * fc, cols)),
        )


def downsample_factor(n: int, max_cells: int = MAX_CELLS) -> int:
    """How many rows (or columns) of n go into one drawn cell so at most max_cells remain."""
    return max(1, math.ceil(n / max_cells))


def _block_mean(x: torch.Tensor, factor: int, dim: int) -> torch.Tensor:
    """The mean of every `factor` consecutive entries along `dim`; the last block may be
    shorter and is the mean of what it has."""
    if factor == 1:
        return x
    n = x.shape[dim]
    whole = n // factor * factor
    parts = [x.narrow(dim, 0, whole).unflatten(dim, (n // factor, factor)).mean(dim + 1)]
    if whole < n:
        parts.append(x.narrow(dim, whole, n - whole).mean(dim, keepdim=True))
    return torch.cat(parts, dim)


def frobenius_norm(matrix: torch.Tensor) -> float:
    """‖W‖ of a matrix, as exact as float64 for the cost of a float32 pass: each row's norm
    in float32, then their norm in float64 (one float32 sum over 38 M squares is 0.2 % off)."""
    return float(
        torch.linalg.vector_norm(torch.linalg.vector_norm(matrix.float(), dim=-1).double())
    )


@torch.no_grad()
def read_weight_matrix(
    model: nn.Module,
    entry: MatrixEntry,
    layer: int | None,
    config: GPTConfig,
    max_cells: int = MAX_CELLS,
) -> WeightMatrix:
    """Read one matrix of `model` (block `layer` for a block's matrix) for drawing. The
    averages and the norm are computed where the model lives; only the averaged cells are
    copied to the CPU."""
    name = entry.parameter.format(layer=layer)
    stored = model.get_parameter(name).detach()  # [out, in] for a Linear
    shape = tuple(stored.shape[::-1]) if entry.linear else tuple(stored.shape)
    factor = (downsample_factor(shape[0], max_cells), downsample_factor(shape[1], max_cells))
    stored_factor = factor[::-1] if entry.linear else factor
    cells = _block_mean(_block_mean(stored.float(), stored_factor[0], 0), stored_factor[1], 1)
    if entry.linear:
        cells = cells.T  # [in, out], as shown
    return WeightMatrix(
        entry=entry,
        parameter=name,
        shape=shape,
        cells=np.ascontiguousarray(cells.cpu().numpy(), dtype=np.float32),
        factor=factor,
        n_parameters=stored.numel(),
        norm=frobenius_norm(stored),
        head_dim=config.head_dim,
    )
