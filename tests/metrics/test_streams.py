from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from matteralign.metrics._backend import Backend
from matteralign.metrics.neighbours import nearest_neighbours
from matteralign.metrics.streams import count_below, rank_sums


def rank_sums_dense(knn, right, groups=None):
    """R[a, b] = sum_i sum_{j in knn_a(i)} (1 + #{l != i, not in i's group: d_b(i,l) < d_b(i,j)}).
    """
    out = np.zeros((len(knn), len(right)), dtype=np.int64)
    for b, y in enumerate(right):
        d = cdist(y, y) ** 2
        np.fill_diagonal(d, np.inf)
        if groups is not None:
            d[groups[:, None] == groups[None, :]] = np.inf
        for a, nn in enumerate(knn):
            for i in range(d.shape[0]):
                for j in nn[i]:
                    out[a, b] += 1 + np.sum(d[i] < d[i, j])
    return out


def test_count_below_with_ties_and_inf():
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 5, size=(7, 40)).astype(np.float64)
    tile[:, 3] = np.inf
    thr = np.take_along_axis(tile, rng.integers(0, 40, size=(7, 9)), 1)
    thr[0, 0] = np.inf  # a threshold of inf counts every finite entry
    got = count_below(torch.as_tensor(tile), torch.as_tensor(thr)).numpy()
    want = (tile[:, None, :] < thr[:, :, None]).sum(-1)
    np.testing.assert_array_equal(got, want)
    assert got[0, 0] == 39


@pytest.mark.parametrize("with_groups", [False, True])
def test_rank_sums_exact_on_tied_integer_data(with_groups):
    rng = np.random.default_rng(3)
    # integer coordinates on a small grid: very many tied distances (and duplicate rows)
    xs = [rng.integers(0, 4, size=(50, 2)).astype(np.float64) for _ in range(3)]
    groups = rng.integers(0, 20, size=50) if with_groups else None
    be = Backend("cpu", block_bytes=50 * 8 * 4 * 7)  # several row blocks
    knn = [nearest_neighbours(x, 3, "euclidean", be, groups=groups).indices for x in xs]
    got = rank_sums(knn, xs, be, groups=groups)
    want = rank_sums_dense(knn, xs, groups)
    np.testing.assert_array_equal(got, want.astype(np.float64))


def test_distance_tiles_are_centred_far_from_the_origin():
    """Information imbalance was off by 2 % and dCor by 3e-4 at an offset of 1e7 before the
    tiles were formed from centred rows; now they match the unshifted data."""
    from matteralign.metrics import distance_correlation, id_correlation, information_imbalance

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = x[:, :3] + 0.3 * rng.normal(size=(300, 3))
    assert information_imbalance(x + 1e7, y - 3e6, k=1) == information_imbalance(x, y, k=1)
    assert distance_correlation(x + 1e7, y) == pytest.approx(distance_correlation(x, y),
                                                               rel=1e-9)
    assert id_correlation(x + 1e7, y).value == pytest.approx(id_correlation(x, y).value,
                                                             rel=1e-7)


def test_cross_sums_of_row_ranges_add_up_to_the_whole_pass():
    from matteralign.metrics._backend import Backend
    from matteralign.metrics.streams import cross_sums

    rng = np.random.default_rng(7)
    xs = [rng.normal(size=(90, d)) for d in (3, 5, 4)]
    be = Backend("cpu", block_bytes=8 * 90 * 4 * 7)  # 7-row blocks: ranges cut through blocks
    for kind, sig in (("distance", None), ("rbf", [1.0, 2.0, 1.5])):
        s, rows, _ = cross_sums(xs, None, be, kind, sig, zero_diag=True)
        parts = [cross_sums(xs, None, be, kind, sig, zero_diag=True, row_range=r)
                 for r in ((0, 10), (10, 55), (55, 90))]
        np.testing.assert_allclose(sum(p[0] for p in parts), s, rtol=1e-13)
        np.testing.assert_allclose(np.concatenate([p[1] for p in parts], axis=1), rows, rtol=1e-14)
