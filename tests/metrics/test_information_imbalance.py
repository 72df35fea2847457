from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from matteralign.metrics import EmbeddingError, information_imbalance
from tests.metrics.conftest import rel_close


def ii_dense(x, y, k):
    dx, dy = cdist(x, x), cdist(y, y)
    n = x.shape[0]
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(dy, np.inf)
    nn = np.argsort(dx, axis=1, kind="stable")[:, :k]
    total = 0
    for i in range(n):
        for j in nn[i]:
            total += 1 + np.sum(dy[i] < dy[i, j])
    return 2.0 * total / (n * n * k)


@pytest.mark.parametrize("k", [1, 4])
def test_matches_dense(pair, k):
    x, y = pair
    assert rel_close(information_imbalance(x, y, k), ii_dense(x, y, k))
    assert rel_close(information_imbalance(y, x, k), ii_dense(y, x, k))


def test_self_value_and_errors(pair):
    x, y = pair
    n = x.shape[0]
    assert rel_close(information_imbalance(x, x, 3), 4 / n)
    with pytest.raises(EmbeddingError, match="N > "):
        information_imbalance(x, y, k=n)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4))
def test_invariances(seed, k):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(25, 3)), rng.normal(size=(25, 4))
    v = information_imbalance(x, y, k)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    p = rng.permutation(25)
    assert rel_close(information_imbalance(x @ q * 2 + 1, y, k), v, 1e-12)
    assert rel_close(information_imbalance(x[p], y[p], k), v, 1e-12)
    assert 0 < v < 2


@pytest.mark.parametrize("k", [1, 3])
def test_exact_with_many_ties(k):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=(70, 3)).astype(float)  # integer grid: most distances tie
    y = x[:, :2] + rng.integers(0, 2, size=(70, 2))
    assert information_imbalance(x, y, k) == ii_dense(x, y, k)
    assert information_imbalance(y, x, k) == ii_dense(y, x, k)
