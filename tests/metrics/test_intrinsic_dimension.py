from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize
from scipy.spatial.distance import cdist

from matteralign.metrics import EmbeddingError, intrinsic_dimension
from matteralign.metrics.intrinsic_dimension import gride_log_likelihood
from tests.metrics.conftest import rel_close


def sorted_dists(x):
    d = cdist(x, x)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)


def twonn_dense(x, discard=0.1):
    d = sorted_dists(x)
    n = x.shape[0]
    mu = np.sort(d[:, 1] / d[:, 0])
    m = int(n * (1 - discard))
    xs = np.log(mu[:m])
    ys = -np.log(1 - np.arange(1, m + 1) / n)
    return np.sum(xs * ys) / np.sum(xs * xs)


def mle_dense(x, k):
    d = sorted_dists(x)[:, :k]
    return np.mean([1.0 / np.mean(np.log(d[i, k - 1] / d[i, : k - 1])) for i in range(len(d))])


@pytest.fixture
def manifold():
    rng = np.random.default_rng(0)
    z = rng.uniform(size=(400, 3))
    return np.hstack([z, np.sin(z), z**2]) @ rng.normal(size=(9, 12))


def test_twonn_matches_dense_and_skdim(manifold):
    """DADApy's TwoNN is compared in dadapy_reference/ (it cannot be installed beside numpy 2)."""
    v = intrinsic_dimension(manifold, "twonn")
    assert rel_close(v, twonn_dense(manifold))
    assert 2.0 < v < 4.0
    skdim = pytest.importorskip("skdim")
    assert rel_close(v, skdim.id.TwoNN().fit(manifold).dimension_, 1e-6)


def test_mle_matches_dense(manifold):
    assert rel_close(intrinsic_dimension(manifold, "mle", k=20), mle_dense(manifold, 20))
    assert rel_close(intrinsic_dimension(manifold[:120], "mle"), mle_dense(manifold[:120], 50))


def test_gride_is_likelihood_maximum(manifold):
    v = intrinsic_dimension(manifold, "gride", k=4)
    d = sorted_dists(manifold)
    mu = d[:, 7] / d[:, 3]
    res = optimize.minimize_scalar(lambda t: -gride_log_likelihood(t, mu, 4), bounds=(0.5, 20),
                                   method="bounded", options={"xatol": 1e-10})
    assert rel_close(v, res.x, 1e-6)


def test_duplicates_raise(manifold):
    x = np.vstack([manifold, manifold[:3]])
    with pytest.raises(EmbeddingError, match="duplicate"):
        intrinsic_dimension(x)
    with pytest.raises(ValueError):
        intrinsic_dimension(manifold, "pca")
    with pytest.raises(EmbeddingError, match="N > 50"):
        intrinsic_dimension(manifold[:50], "mle")


def test_scale_rotation_invariant(manifold):
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(12, 12)))
    for m in ("twonn", "mle"):
        assert rel_close(intrinsic_dimension(manifold @ q * 7, m, k=10),
                         intrinsic_dimension(manifold, m, k=10), 1e-8)


@pytest.mark.parametrize("method", ["twonn", "mle"])
def test_tied_distances_raise_instead_of_nan_or_inf(method):
    """Simplex vertices (every pair at distance sqrt 2): TwoNN is 0/0, the MLE infinite; both
    raise, with no numpy warning on the way."""
    import warnings

    from matteralign.metrics import EmbeddingError

    x = np.eye(30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(EmbeddingError, match="tied|same distance"):
            intrinsic_dimension(x, method, k=5)


def test_engine_names_the_model_with_tied_distances():
    from matteralign.metrics import EmbeddingError, pairwise

    rng = np.random.default_rng(0)
    with pytest.raises(EmbeddingError, match="model 'composition'.*same distance"):
        pairwise({"ok": rng.normal(size=(30, 4)), "composition": np.eye(30)}, "id-mle-k5")
