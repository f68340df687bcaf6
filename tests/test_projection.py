"""PCA of embeddings against numpy's eigendecomposition of the covariance in float64."""

import numpy as np
import pytest

from gpt_core.analysis import pca_2d


def test_pca_equals_the_top_eigenvectors_of_the_covariance():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 12)) @ np.diag(np.linspace(3, 0.1, 12))  # distinct spreads
    projection = pca_2d(vectors.astype(np.float32))
    centred = vectors - vectors.mean(0)
    values, vectors_ = np.linalg.eigh(centred.T @ centred)  # ascending
    for axis in range(2):
        direction = vectors_[:, -1 - axis]
        direction *= np.sign(direction[np.abs(direction).argmax()])
        assert np.allclose(projection.coords[:, axis], centred @ direction, atol=1e-4)
    assert np.allclose(projection.explained, values[::-1][:2] / values.sum())


def test_degenerate_inputs():
    one = pca_2d(np.ones((1, 5)))
    assert one.coords.tolist() == [[0.0, 0.0]] and one.explained.tolist() == [0.0, 0.0]
    line = pca_2d(np.outer(np.arange(4.0), [1.0, 2.0, 2.0]))  # all on one line
    assert line.explained[0] == pytest.approx(1.0) and np.allclose(line.coords[:, 1], 0, atol=1e-6)
    with pytest.raises(ValueError, match="finite"):
        pca_2d(np.array([[np.nan, 1.0]]))
