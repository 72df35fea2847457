from __future__ import annotations

import dcor
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from matteralign.metrics import EmbeddingError, distance_correlation
from tests.metrics.conftest import rel_close


def dcor_dense(x, y, unbiased):
    a, b = cdist(x, x), cdist(y, y)
    n = a.shape[0]

    def centre(m):
        if not unbiased:
            return m - m.mean(0) - m.mean(1)[:, None] + m.mean()
        c = m - m.sum(0) / (n - 2) - m.sum(1)[:, None] / (n - 2) + m.sum() / ((n - 1) * (n - 2))
        np.fill_diagonal(c, 0)
        return c

    a, b = centre(a), centre(b)
    return np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b))


@pytest.mark.parametrize("unbiased", [False, True])
def test_matches_dense_and_dcor(pair, unbiased):
    x, y = pair
    v = distance_correlation(x, y, unbiased)
    assert rel_close(v, dcor_dense(x, y, unbiased))
    lib = dcor.u_distance_correlation_sqr if unbiased else dcor.distance_correlation_sqr
    assert rel_close(v, float(lib(x, y)))


def test_float32_tiles_close(pair):
    x, y = pair
    assert abs(distance_correlation(x, y, precision="float32") - dcor_dense(x, y, False)) < 1e-5


def test_errors(pair):
    x, y = pair
    with pytest.raises(EmbeddingError, match="identical"):
        distance_correlation(np.ones_like(x), y)
    with pytest.raises(EmbeddingError, match="samples"):
        distance_correlation(x, y[:10])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_invariances(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 3))
    v = distance_correlation(x, y)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    p = rng.permutation(20)
    assert rel_close(distance_correlation(x @ q * 3 - 2, y), v, 1e-8)
    assert rel_close(distance_correlation(x[p], y[p]), v, 1e-8)
    assert rel_close(distance_correlation(y, x), v, 1e-10)
    assert rel_close(distance_correlation(x, x), 1.0, 1e-10)
    assert 0 <= v <= 1 + 1e-12
