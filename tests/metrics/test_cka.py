from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from matteralign.metrics import EmbeddingError, cka
from matteralign.metrics.cka import rbf_sigma
from tests.metrics.conftest import rel_close
from tests.metrics.test_cknna import hsic_unbiased_dense


def hsic_biased_dense(k, lk):
    n = k.shape[0]
    h = np.eye(n) - 1.0 / n
    return np.trace(k @ h @ lk @ h)


def cka_dense(k, lk, unbiased):
    f = hsic_unbiased_dense if unbiased else hsic_biased_dense
    return f(k, lk) / np.sqrt(f(k, k) * f(lk, lk))


@pytest.mark.parametrize("unbiased", [False, True])
def test_linear_matches_dense(pair, unbiased):
    x, y = pair
    assert rel_close(cka(x, y, "linear", unbiased), cka_dense(x @ x.T, y @ y.T, unbiased))


@pytest.mark.parametrize("unbiased", [False, True])
def test_rbf_matches_dense(pair, unbiased):
    x, y = pair
    kx = np.exp(-cdist(x, x, "sqeuclidean") / (2 * rbf_sigma(x) ** 2))
    ky = np.exp(-cdist(y, y, "sqeuclidean") / (2 * rbf_sigma(y) ** 2))
    assert rel_close(cka(x, y, "rbf", unbiased), cka_dense(kx, ky, unbiased))


def test_sigma_is_half_mean_sq_distance(pair):
    x, _ = pair
    d2 = cdist(x, x, "sqeuclidean")
    n = x.shape[0]
    assert rel_close(rbf_sigma(x) ** 2, d2.sum() / (n * (n - 1)) / 2)


def test_errors(pair):
    x, y = pair
    with pytest.raises(EmbeddingError, match="no variance"):
        cka(np.ones_like(x), y)
    with pytest.raises(ValueError):
        cka(x, y, kernel="poly")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), unbiased=st.booleans())
def test_invariances(seed, unbiased):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 3))
    v = cka(x, y, unbiased=unbiased)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    p = rng.permutation(20)
    assert rel_close(cka(x @ q * 2.5 + 1.0, y, unbiased=unbiased), v, 1e-8)
    assert rel_close(cka(x[p], y[p], unbiased=unbiased), v, 1e-8)
    assert rel_close(cka(y, x, unbiased=unbiased), v, 1e-8)
    assert rel_close(cka(x, x, unbiased=unbiased), 1.0, 1e-9)
    assert v <= 1 + 1e-9
