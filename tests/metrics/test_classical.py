from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg, stats
from scipy.spatial.distance import pdist

from matteralign.metrics import EmbeddingError, linear_reconstruction, procrustes, rsa, svcca
from tests.metrics.conftest import rel_close


def test_rsa_matches_scipy_spearman(pair):
    x, y = pair
    assert rel_close(rsa(x, y), stats.spearmanr(pdist(x), pdist(y)).statistic)


def test_procrustes_matches_rotation_search(pair):
    x, y = pair
    xc = x - x.mean(0)
    yc = y - y.mean(0)
    xc /= np.linalg.norm(xc)
    yc /= np.linalg.norm(yc)
    d = max(x.shape[1], y.shape[1])
    xp = np.pad(xc, ((0, 0), (0, d - x.shape[1])))
    yp = np.pad(yc, ((0, 0), (0, d - y.shape[1])))
    r, _ = linalg.orthogonal_procrustes(yp, xp)
    assert rel_close(procrustes(x, y), np.linalg.norm(xp - yp @ r))


def test_svcca_matches_dense_cca(pair):
    x, y = pair

    def reduce(m):
        mc = m - m.mean(0)
        u, s, _ = np.linalg.svd(mc, full_matrices=False)
        r = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.99 - 1e-12) + 1)
        return u[:, :r] * s[:r]

    a, b = reduce(x), reduce(y)
    # canonical correlations via whitened cross-covariance
    wa = linalg.inv(linalg.sqrtm(a.T @ a)).real
    wb = linalg.inv(linalg.sqrtm(b.T @ b)).real
    rho = np.linalg.svd(wa @ a.T @ b @ wb, compute_uv=False)
    assert rel_close(svcca(x, y), np.mean(rho), 1e-8)


def test_linear_reconstruction_matches_ridge(pair):
    x, y = pair
    xc, yc = x - x.mean(0), y - y.mean(0)
    lam = 1e-3 * np.sum(xc**2) / x.shape[1]
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ yc)
    r2 = 1 - np.sum((yc - xc @ w) ** 2) / np.sum(yc**2)
    assert rel_close(linear_reconstruction(x, y), r2)
    with pytest.raises(ValueError):
        linear_reconstruction(x, y, alpha=0)


def test_errors(pair):
    x, y = pair
    for f in (svcca, procrustes, linear_reconstruction, rsa):
        with pytest.raises(EmbeddingError):
            f(np.ones_like(x), y)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_invariances(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 3))
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    p = rng.permutation(20)
    for f in (svcca, procrustes, rsa, linear_reconstruction):
        v = f(x, y)
        assert abs(f(x @ q * 2 + 1, y) - v) < 1e-8
        assert abs(f(x[p], y[p]) - v) < 1e-8
    assert procrustes(x, x) < 1e-6 and abs(svcca(x, x) - 1) < 1e-9 and abs(rsa(x, x) - 1) < 1e-12
    assert abs(procrustes(x, y) - procrustes(y, x)) < 1e-10
