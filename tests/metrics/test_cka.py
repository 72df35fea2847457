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


@pytest.mark.parametrize("unbiased", [False, True])
def test_linear_wide_embeddings_use_the_sample_gram(unbiased):
    """D >> N: (20, 40,000) inputs. The (D, D) form would need 12.8 GB; the (N, N) form is exact."""
    from matteralign.metrics import get_metric, pairwise
    from matteralign.metrics._backend import resolve_backend
    from matteralign.metrics.cka import linear_state

    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 40_000))
    y = x[:, :30_000] + rng.normal(size=(20, 30_000))
    z = rng.normal(size=(20, 8))
    assert linear_state(x, resolve_backend("cpu"), unbiased).gram.shape == (20, 20)
    assert rel_close(cka(x, y, "linear", unbiased), cka_dense(x @ x.T, y @ y.T, unbiased))
    assert rel_close(cka(x, z, "linear", unbiased), cka_dense(x @ x.T, z @ z.T, unbiased))
    mid = "cka-linear" + ("-unbiased" if unbiased else "")
    mat = pairwise({"x": x, "y": y, "z": z}, mid)
    assert rel_close(mat.matrix.loc["x", "y"], cka_dense(x @ x.T, y @ y.T, unbiased))
    # permutation nulls of wide models (the engine permutes the state's rows, not its Gram)
    from matteralign.metrics.calibration import null_matrices, permutations

    perms = permutations(20, 2, seed=0)
    null = null_matrices(get_metric(mid), [x, y], ["x", "y"], resolve_backend("cpu"), perms)
    yp = y[perms[1]]
    assert rel_close(null[1, 0, 1], cka_dense(x @ x.T, yp @ yp.T, unbiased))


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_far_from_origin_keeps_precision(pair, kernel):
    """Distances and centred Grams are translation invariant; an offset of 1e7 changes nothing."""
    x, y = pair
    assert cka(x + 1e7, y - 3e6, kernel) == pytest.approx(cka(x, y, kernel), rel=1e-9)
