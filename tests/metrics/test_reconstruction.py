"""GFRE, GFRD and LFRE against scikit-matter's own functions on the same split, to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest

from matteralign.metrics import EmbeddingError
from matteralign.metrics.reconstruction import (
    gfrd,
    gfre,
    lfre,
    pointwise_gfrd,
    pointwise_gfre,
    pointwise_lfre,
    reconstruction_split,
    two_folds,
)

skm = pytest.importorskip("skmatter.metrics")


def _features(n: int = 160, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two nonlinear views (12 and 8 features) of one 5-dimensional latent."""
    r = np.random.default_rng(seed)
    z = r.normal(size=(n, 5))
    x = np.tanh(z @ r.normal(size=(5, 12))) + 0.05 * r.normal(size=(n, 12))
    y = (z @ r.normal(size=(5, 8))) ** 2 + 0.1 * r.normal(size=(n, 8))
    return x, y


def test_split_matches_sklearn():
    from sklearn.model_selection import KFold, train_test_split

    for n in (7, 50, 51):
        train, test = train_test_split(np.arange(n), train_size=0.5, test_size=0.5, shuffle=True,
                                       random_state=0x5F3759DF)
        ours = reconstruction_split(n)
        assert np.array_equal(ours[0], train) and np.array_equal(ours[1], test)
        f1, f2 = next(KFold(2, shuffle=True, random_state=0x5F3759DF).split(np.zeros((n, 1))))
        assert np.array_equal(two_folds(n)[0], f1) and np.array_equal(two_folds(n)[1], f2)


@pytest.mark.parametrize("swap", [False, True])
def test_gfre_matches_skmatter(swap):
    x, y = _features()
    if swap:
        x, y = y, x
    assert abs(gfre(x, y) - skm.global_reconstruction_error(x, y)) < 1e-6
    np.testing.assert_allclose(pointwise_gfre(x, y),
                               skm.pointwise_global_reconstruction_error(x, y), atol=1e-6)


def test_gfre_is_directed():
    x, y = _features()
    assert abs(gfre(x, y) - gfre(y, x)) > 1e-2
    # a target that is a linear map of the source is reconstructed almost exactly
    assert gfre(x, x @ np.random.default_rng(0).normal(size=(12, 6))) < 1e-4


def test_gfrd_matches_skmatter():
    x, y = _features()
    # scikit-matter's GFRD is defined for D_x <= D_y only (it raises a shape error otherwise)
    assert abs(gfrd(y, x) - skm.global_reconstruction_distortion(y, x)) < 1e-6
    np.testing.assert_allclose(pointwise_gfrd(y, x),
                               skm.pointwise_global_reconstruction_distortion(y, x), atol=1e-6)
    assert np.isfinite(gfrd(x, y))


def test_gfrd_of_a_rotation_is_zero():
    x, _ = _features()
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(12, 12)))
    assert gfrd(x, x @ q) < 1e-6


@pytest.mark.parametrize(("swap", "k"), [(False, 8), (True, 8), (False, 30), (True, 5)])
def test_lfre_matches_skmatter(swap, k):
    x, y = _features(100)
    if swap:
        x, y = y, x
    expected = skm.pointwise_local_reconstruction_error(x, y, k)
    np.testing.assert_allclose(pointwise_lfre(x, y, k), expected, atol=1e-6)
    # skmatter's local_reconstruction_error is this RMS of its pointwise errors
    assert abs(lfre(x, y, k) - np.linalg.norm(expected) / np.sqrt(len(expected))) < 1e-6


def test_lfre_default_k_is_smaller_width():
    x, y = _features()
    assert lfre(x, y) == lfre(x, y, 8)


def test_rank_deficient_features_match_skmatter():
    x, y = _features()
    x = np.hstack([x, x[:, :3], np.ones((len(x), 1))])  # duplicated and constant columns
    assert abs(gfre(x, y) - skm.global_reconstruction_error(x, y)) < 1e-6
    np.testing.assert_allclose(pointwise_lfre(x, y, 10),
                               skm.pointwise_local_reconstruction_error(x, y, 10), atol=1e-6)


def test_explicit_split_matches_skmatter():
    x, y = _features()
    test = np.arange(0, 160, 3)
    assert abs(gfre(x, y, test_idx=test)
               - skm.global_reconstruction_error(x, y, test_idx=test)) < 1e-6
    assert abs(lfre(x, y, 6, test_idx=test)
               - skm.local_reconstruction_error(x, y, 6, test_idx=test)) < 1e-6


def test_bad_input_names_the_problem():
    x, y = _features()
    with pytest.raises(EmbeddingError, match="same number|samples"):
        gfre(x, y[:-1])
    with pytest.raises(EmbeddingError, match="n_local_points"):
        lfre(x, y, 500)
    const = np.ones_like(y)
    with pytest.raises(EmbeddingError, match="y"):
        gfre(x, const)


def test_registered_families_fill_directed_matrices():
    from matteralign.metrics import get_metric, pairwise

    x, y = _features(n=80)
    z = np.random.default_rng(7).normal(size=(80, 5))
    emb = {"a": x, "b": y, "c": z}
    for mid, fn, kw in (("gfre", gfre, {}), ("gfrd", gfrd, {}), ("lfre-k6", lfre, {"k": 6}),
                        ("lfre", lfre, {})):
        spec = get_metric(mid)
        assert spec.directed and not spec.symmetric and not spec.higher_is_more_similar
        mat = pairwise(emb, mid).matrix
        for a in emb:
            for b in emb:
                if a != b:
                    assert mat.loc[a, b] == pytest.approx(fn(emb[a], emb[b], **kw), abs=1e-12)
    assert get_metric("lfre", k=6).id == "lfre-k6"


def test_lfre_on_cuda_fits_local_problems_above_32_on_the_host(monkeypatch):
    """cuSOLVER batches eigendecompositions only up to 32 x 32: larger local fits asked for on
    CUDA run on the CPU path, with the CPU path's values (no GPU needed to check the routing)."""
    from types import SimpleNamespace

    import torch

    from matteralign.metrics import reconstruction

    real, asked = reconstruction.resolve_backend, []

    def backend(device):
        asked.append(device)
        return SimpleNamespace(device=torch.device("cuda")) if device == "cuda" else real(device)

    monkeypatch.setattr(reconstruction, "resolve_backend", backend)
    r = np.random.default_rng(3)
    x, y = r.normal(size=(160, 40)), r.normal(size=(160, 36))
    on_cuda = pointwise_lfre(x, y, 34, device="cuda")
    assert asked == ["cuda", "cpu"]
    np.testing.assert_array_equal(on_cuda, pointwise_lfre(x, y, 34, device="cpu"))
    np.testing.assert_allclose(on_cuda, skm.pointwise_local_reconstruction_error(x, y, 34),
                               atol=1e-6)
