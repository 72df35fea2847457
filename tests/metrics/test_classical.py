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


def test_condensed_distances_and_doubled_ranks():
    from matteralign.metrics.classical import condensed_distances, doubled_ranks

    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 6)) + 50.0
    x[7] = x[2]  # a duplicate row: distance exactly 0
    d = condensed_distances(x, block_rows=16)
    ref = pdist(x)
    assert d[ref == 0].tolist() == [0.0]
    assert np.max(np.abs(d - ref) / np.maximum(ref, 1e-300)) < 1e-9
    xi = rng.integers(0, 3, size=(45, 2)).astype(float)  # integer grid: ties everywhere
    di = condensed_distances(xi, block_rows=8)
    assert np.array_equal(di, pdist(xi))
    r = doubled_ranks(di)
    assert r.dtype == np.uint32 and np.array_equal(r, 2 * stats.rankdata(di))


def test_rsa_matrix_equals_rsa(tmp_path):
    from matteralign.metrics.classical import rsa_matrix

    rng = np.random.default_rng(8)
    xs = [rng.normal(size=(70, 4)), rng.integers(0, 3, size=(70, 3)).astype(float)]
    xs.append(np.tanh(xs[0]) + 0.2 * rng.normal(size=(70, 4)))
    got = rsa_matrix(xs, names=["a", "b", "c"], scratch_dir=str(tmp_path), chunk=500)
    want = np.array([[rsa(a, b) for b in xs] for a in xs])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    cross = rsa_matrix(xs[:1], right=xs[1:], scratch_dir=str(tmp_path))
    np.testing.assert_allclose(cross, want[:1, 1:], rtol=1e-12, atol=1e-15)
    assert list(tmp_path.iterdir()) == []  # the scratch directory is removed
    with pytest.raises(EmbeddingError, match="b: all pairwise distances are equal"):
        rsa_matrix([xs[0], np.eye(70)], names=["a", "b"])  # a simplex: every distance sqrt(2)


def test_rsa_matrix_refuses_when_scratch_disk_is_short(monkeypatch, tmp_path):
    import shutil

    from matteralign.metrics import classical

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 1000))
    with pytest.raises(OSError, match=r"needs 0\.0 GB of scratch disk"):
        classical.rsa_matrix([np.arange(40.0).reshape(20, 2)] * 2, scratch_dir=str(tmp_path))
    assert classical.rsa_scratch_bytes(60, 10_000) == 60 * 49_995_000 * 4


def test_block_forms_give_both_directions_and_wide_factors():
    """ridge_r2_from_block gives R^2 both ways from one block; procrustes_state reduces D > N."""
    from matteralign.metrics.classical import (
        procrustes_from_states,
        procrustes_state,
        ridge_r2_from_block,
        ridge_state,
    )

    rng = np.random.default_rng(17)
    x = rng.normal(size=(30, 50))  # D > N: U is (30, 30)
    y = np.tanh(x[:, :6]) + 0.1 * rng.normal(size=(30, 6))
    a, b = ridge_state(x), ridge_state(y)
    fwd, back = ridge_r2_from_block(a, b, a.u.T @ b.u)
    assert a.u.shape == (30, 30)
    assert rel_close(fwd, linear_reconstruction(x, y), 1e-12)
    assert rel_close(back, linear_reconstruction(y, x), 1e-12)
    xc = x - x.mean(0)
    xc /= np.linalg.norm(xc)
    fx = procrustes_state(x)
    assert fx.shape == (30, 30)
    np.testing.assert_allclose(fx @ fx.T, xc @ xc.T, atol=1e-14)
    yc = y - y.mean(0)
    yc /= np.linalg.norm(yc)
    dense = np.sqrt(2 - 2 * np.sum(np.linalg.svd(xc.T @ yc, compute_uv=False)))
    assert rel_close(procrustes_from_states(fx, procrustes_state(y)), dense, 1e-12)
