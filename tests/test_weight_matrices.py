"""The weight matrices read for drawing, checked against numpy and torch on the full
parameters: block averages, parameter counts, norms, the way a Linear's weight is turned,
and which columns (or rows) belong to a head."""

import numpy as np
import pytest
import torch

from gpt_core import load_model
from gpt_core.analysis.weight_matrices import (
    HEAD_COLUMNS,
    HEAD_ROWS,
    SECTION_MATRICES,
    downsample_factor,
    read_weight_matrix,
    section_matrices,
)
from gpt_core.probe.sections import SECTIONS


def _entry(section, short_name):
    return next(e for e in section_matrices(section) if e.short_name == short_name)


def _block_averages(full: np.ndarray, row_factor: int, col_factor: int) -> np.ndarray:
    """Mean of every row_factor × col_factor block (the last ones may be smaller), in
    float64, one block at a time."""
    rows, cols = full.shape
    out = np.empty((-(-rows // row_factor), -(-cols // col_factor)))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = full[
                i * row_factor : (i + 1) * row_factor, j * col_factor : (j + 1) * col_factor
            ]
            out[i, j] = block.astype(np.float64).mean()
    return out


@pytest.mark.parametrize(
    ("section", "name", "max_cells"),
    [
        ("embeddings", "tok_emb", 768),  # 50,257 rows: 66 to a cell, the last cell 31
        ("ff", "W_1", 10),  # [32, 128] shown: 4 × 13 to a cell, both last ones short
        ("attention", "out_proj", 7),
    ],
)
def test_the_drawn_cells_are_numpy_block_averages_of_the_matrix_as_shown(
    tiny_model, tiny_cfg, section, name, max_cells
):
    entry = _entry(section, name)
    matrix = read_weight_matrix(tiny_model, entry, 1, tiny_cfg, max_cells)
    stored = tiny_model.get_parameter(entry.parameter.format(layer=1)).detach().numpy()
    full = stored.T if entry.linear else stored  # x @ W.T: a Linear's weight as [in, out]
    assert matrix.shape == full.shape
    assert matrix.factor == (
        downsample_factor(full.shape[0], max_cells),
        downsample_factor(full.shape[1], max_cells),
    )
    assert max(matrix.cells.shape) <= max_cells and matrix.downsampled
    assert matrix.cells.dtype == np.float32
    expected = _block_averages(full, *matrix.factor)
    assert matrix.cells.shape == expected.shape
    np.testing.assert_allclose(matrix.cells, expected, rtol=1e-5, atol=1e-7)


def test_a_small_matrix_is_shown_one_to_one_in_the_orientation_of_the_operations(
    tiny_model, tiny_cfg
):
    w1 = read_weight_matrix(tiny_model, _entry("ff", "W_1"), 0, tiny_cfg)
    stored = tiny_model.trf_blocks[0].ff.layers[0].weight.detach().numpy()  # [4E, E]
    assert w1.shape == (tiny_cfg.emb_dim, 4 * tiny_cfg.emb_dim)  # "[T, E] @ [E, 4E]"
    assert w1.factor == (1, 1) and w1.scale_text() == "shown 1:1"
    assert np.array_equal(w1.cells, stored.T)
    assert w1.parameter == "trf_blocks.0.ff.layers.0.weight"


def test_parameter_count_and_norm_are_torchs_on_the_full_matrix(tiny_model, tiny_cfg):
    for section, entries in SECTION_MATRICES.items():
        for entry in entries:
            matrix = read_weight_matrix(tiny_model, entry, 1, tiny_cfg, max_cells=5)
            parameter = tiny_model.get_parameter(entry.parameter.format(layer=1))
            assert matrix.n_parameters == parameter.numel(), (section, entry.short_name)
            norm = torch.linalg.norm(parameter.detach().double()).item()
            assert matrix.norm == pytest.approx(norm, rel=1e-5), (section, entry.short_name)


def test_the_table_names_registry_sections_and_their_own_parameters(tiny_model):
    names = dict(tiny_model.named_parameters())
    for section, entries in SECTION_MATRICES.items():
        spec = SECTIONS[section]
        modules = [m.format(layer=0) for m in spec.parameters]
        for entry in entries:
            parameter = entry.parameter.format(layer=0)
            assert parameter in names and names[parameter].ndim == 2
            assert any(parameter.startswith(m + ".") for m in modules), parameter
            assert ("{layer}" in entry.parameter) == spec.per_block
    assert section_matrices("ln1") == ()


@pytest.mark.parametrize("head", [0, 2, 3])
def test_the_head_slice_is_exactly_where_the_heads_weights_are(tiny_cfg, head):
    """A marker planted in head `head`'s weights (torch's [out, in] layout) shows up in
    exactly the columns (rows for out_proj) that head_span and cell_span give."""
    model, _ = load_model(None, tiny_cfg, seed=2)
    d = tiny_cfg.head_dim
    att = model.trf_blocks[1].att
    marker = 100.0
    with torch.no_grad():
        att.W_key.weight[head * d : (head + 1) * d, :] = marker  # head's output features
        att.out_proj.weight[:, head * d : (head + 1) * d] = marker  # its context's features
    for name, axis in (("W_key", HEAD_COLUMNS), ("out_proj", HEAD_ROWS)):
        matrix = read_weight_matrix(model, _entry("attention", name), 1, tiny_cfg)
        assert matrix.head_span(head) == (axis, head * d, (head + 1) * d)
        _, start, stop = matrix.cell_span(head)
        marked = matrix.cells == marker  # [in, out] as shown
        found = np.flatnonzero(marked.all(axis=0 if axis == HEAD_COLUMNS else 1))
        assert found.tolist() == list(range(int(start), int(stop))), name
        assert marked.sum() == d * tiny_cfg.emb_dim  # nowhere else
    assert read_weight_matrix(model, _entry("ff", "W_2"), 1, tiny_cfg).head_span(head) is None
