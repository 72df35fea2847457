from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from matteralign.metrics import EmbeddingError, nearest_neighbours
from tests.metrics.conftest import make_pair


def brute(x, k, kind):
    s = x @ x.T if kind == "inner" else -cdist(x, x, "sqeuclidean")
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("kind", ["inner", "euclidean"])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_exact_lists(kind, precision):
    x, _ = make_pair(300, seed=2)
    g = nearest_neighbours(x, 7, kind, precision=precision)
    np.testing.assert_array_equal(g.indices, brute(x, 7, kind))
    if kind == "euclidean":
        d = np.take_along_axis(cdist(x, x), g.indices, 1)
        np.testing.assert_allclose(g.values, d, rtol=1e-12)


def test_ties_lowest_index_and_groups():
    x = np.repeat(np.arange(5.0)[:, None], 3, axis=0)  # each value 3 times
    g = nearest_neighbours(x, 2, "euclidean")
    assert g.indices[0].tolist() == [1, 2]
    assert g.indices[1].tolist() == [0, 2]
    g2 = nearest_neighbours(x, 2, "euclidean", groups=np.repeat(np.arange(5), 3))
    assert g2.indices[0].tolist() == [3, 4]
    assert 0 < g2.tied_fraction <= 1


def test_small_blocks_same_result():
    from matteralign.metrics._backend import Backend

    x, _ = make_pair(97, seed=6)
    be = Backend("cpu", block_bytes=97 * 8 * 3 * 5)  # 5-row blocks
    a = nearest_neighbours(x, 4, "inner", be)
    b = nearest_neighbours(x, 4, "inner")
    np.testing.assert_array_equal(a.indices, b.indices)


def test_n_le_k():
    with pytest.raises(EmbeddingError, match="N > 5"):
        nearest_neighbours(np.eye(5), 5)
