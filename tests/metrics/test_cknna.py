from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matteralign.metrics import EmbeddingError, cknna, l2_normalise
from tests.metrics.conftest import make_pair, rel_close


def hsic_unbiased_dense(k: np.ndarray, l_: np.ndarray) -> float:
    """Song et al. (2012) eq. 5 on dense matrices with zeroed diagonals."""
    n = k.shape[0]
    k = k.copy()
    l_ = l_.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l_, 0)
    one = np.ones(n)
    return (
        np.sum(k * l_.T)
        + (one @ k @ one) * (one @ l_ @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ k @ l_ @ one)
    ) / (n * (n - 3))


def topk_mask(kern: np.ndarray, k: int) -> np.ndarray:
    """Top-k per row, self excluded, ties by lowest index (stable sort)."""
    s = kern.copy()
    np.fill_diagonal(s, -np.inf)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    m = np.zeros_like(kern)
    np.put_along_axis(m, idx, 1.0, axis=1)
    return m


def cknna_dense(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Brute force from the definition (platonic-rep semantics without the 1e-6 and flooring)."""
    kk, ll = x @ x.T, y @ y.T
    ma, mb = topk_mask(kk, k), topk_mask(ll, k)
    m = ma * mb
    num = hsic_unbiased_dense(m * kk, m * ll)
    return num / np.sqrt(hsic_unbiased_dense(ma * kk, ma * kk)
                         * hsic_unbiased_dense(mb * ll, mb * ll))


@pytest.mark.parametrize("k", [1, 3, 10, 40])
def test_matches_dense_reference(pair, k):
    x, y = pair
    assert rel_close(cknna(x, y, k=k), cknna_dense(x, y, k))


def test_matches_dense_on_normalised_features():
    x, y = make_pair(150, seed=3)
    x, y = l2_normalise(x), l2_normalise(y)
    assert rel_close(cknna(x, y, k=10), cknna_dense(x, y, 10))


def test_float32_path_matches_float64():
    x, y = make_pair(200, seed=4)
    from matteralign.metrics.neighbours import nearest_neighbours

    g64 = nearest_neighbours(x, 10, precision="float64")
    g32 = nearest_neighbours(x, 10, precision="float32")
    np.testing.assert_array_equal(g64.indices, g32.indices)
    np.testing.assert_allclose(g64.values, g32.values, rtol=1e-12)


def test_duplicate_rows_tie_break_and_report():
    x, y = make_pair(60, seed=5)
    x = np.vstack([x, x[:10]])  # 10 duplicated samples
    y = np.vstack([y, y[:10]])
    v, d = cknna(x, y, k=5, return_diagnostics=True)
    assert rel_close(v, cknna_dense(x, y, 5))
    v2 = cknna(x, y, k=5)
    assert v == v2


def test_ties_reported():
    x = np.zeros((8, 2))
    x[:, 0] = np.arange(8) % 2 + 1.0  # two groups of identical rows
    y = np.random.default_rng(0).normal(size=(8, 3))
    _, d = cknna(x, y, k=2, return_diagnostics=True)
    assert d["tied_fraction_x"] == 1.0


def test_self_alignment_is_one(pair):
    x, _ = pair
    assert rel_close(cknna(x, x, k=5), 1.0)


def test_negative_values_not_floored():
    vals = [cknna(*np.random.default_rng(s).normal(size=(2, 40, 3)), k=3) for s in range(20)]
    assert min(vals) < 0


def test_errors():
    x, y = make_pair(30)
    with pytest.raises(EmbeddingError, match="samples"):
        cknna(x, y[:-1], k=3)
    with pytest.raises(EmbeddingError, match="k=30"):
        cknna(x, y, k=30)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(EmbeddingError, match="row 3"):
        cknna(bad, y)
    with pytest.raises(EmbeddingError, match="constant embedding"):
        cknna(np.zeros((30, 4)), y, k=3)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 8))
def test_properties_permutation_symmetry_rotation_scale(seed, k):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 3))
    v = cknna(x, y, k=k)
    perm = rng.permutation(30)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    assert rel_close(cknna(x[perm], y[perm], k=k), v, 1e-8)
    # not exactly symmetric: the mutual mask M is not symmetric, so 1'(M o K)(M o L)1 changes
    assert rel_close(cknna(y, x, k=k), cknna_dense(y, x, k), 1e-8)
    assert rel_close(cknna(x @ q * 3.0, y, k=k), v, 1e-8)
    assert -1.0 - 1e-9 <= v <= 1.0 + 1e-9
