"""The Features tab's heatmap columns and matrix, from the readout's sparse rows, against a
brute-force reading of the dense activations written here."""

import numpy as np

from explorer.state.features import (
    HEATMAP_COLUMNS,
    HEATMAP_PER_TOKEN,
    heatmap_columns,
    heatmap_matrix,
)
from gpt_core.sae import FeatureSwitches
from gpt_core.sae.readout import FeatureReadout


def _readout(dense: np.ndarray, k: int = 8) -> FeatureReadout:
    order = np.argsort(-dense, axis=1, kind="stable")[:, :k]
    ids, acts = [], []
    for row in dense:
        active = np.flatnonzero(row)
        ids.append(active)
        acts.append(row[active])
    n_tokens = len(dense)
    zeros = np.zeros(n_tokens, dtype=np.float32)
    return FeatureReadout(
        "blocks.0.hook_resid_pre", order, np.take_along_axis(dense, order, 1),
        (dense > 0).sum(1), zeros, zeros, 0.0,
        np.concatenate([[0], np.cumsum([len(i) for i in ids])]),
        np.concatenate(ids), np.concatenate(acts).astype(np.float32), FeatureSwitches(),
    )  # fmt: skip


def test_columns_are_the_top_features_by_peak_and_the_matrix_their_activations():
    rng = np.random.default_rng(0)
    dense = rng.random((40, 500)).astype(np.float32)
    dense[dense < 0.97] = 0  # about 15 active features a token
    readout = _readout(dense)
    columns = heatmap_columns(readout)
    top = np.argsort(-dense, axis=1, kind="stable")[:, :HEATMAP_PER_TOKEN]
    union = sorted({int(f) for t, row in enumerate(top) for f in row if dense[t, f] > 0})
    assert len(union) > HEATMAP_COLUMNS  # the cut to the largest peaks is exercised
    peaks = {f: dense[:, f].max() for f in union}
    kept = sorted(sorted(union, key=lambda f: -peaks[f])[:HEATMAP_COLUMNS])
    np.testing.assert_array_equal(columns, kept)
    np.testing.assert_array_equal(heatmap_matrix(readout, columns), dense[:, kept])
    assert heatmap_matrix(readout, columns[:0]).shape == (40, 0)
