"""Pooling per sample against explicit loops in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matteralign.models.pooling import POOLINGS, _pool, pool_segments


def test_mean_sum_and_per_element_mean_match_loops():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(9, 4))
    segment = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    numbers = np.array([1, 1, 8, 6, 6, 1, 8, 8, 8])
    f, s, z = torch.tensor(features), torch.tensor(segment), torch.tensor(numbers)
    mean = pool_segments(f, s, 3, "mean").numpy()
    total = pool_segments(f, s, 3, "sum").numpy()
    per_element = pool_segments(f, s, 3, "per_element_mean", atomic_numbers=z).numpy()
    for b in range(3):
        rows = features[segment == b]
        np.testing.assert_allclose(mean[b], rows.mean(0), rtol=1e-12)
        np.testing.assert_allclose(total[b], rows.sum(0), rtol=1e-12)
        element_means = [features[(segment == b) & (numbers == e)].mean(0)
                         for e in np.unique(numbers[segment == b])]
        np.testing.assert_allclose(per_element[b], np.mean(element_means, 0), rtol=1e-12)


def test_unknown_pooling_is_refused():
    with pytest.raises(ValueError, match="unknown pooling"):
        pool_segments(torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), 1, "max")


def _cumulants_reference(rows: np.ndarray) -> list[np.ndarray]:
    """κ1..κ8 from scipy's central moments by the explicit formulas in central moments."""
    from scipy.stats import moment

    m = {p: moment(rows, p, axis=0) for p in range(2, 9)}
    return [
        rows.mean(0), m[2], m[3], m[4] - 3 * m[2] ** 2, m[5] - 10 * m[2] * m[3],
        m[6] - 15 * m[2] * m[4] - 10 * m[3] ** 2 + 30 * m[2] ** 3,
        m[7] - 21 * m[2] * m[5] - 35 * m[3] * m[4] + 210 * m[2] ** 2 * m[3],
        # κ8: 420 μ2²μ4 + 560 μ2μ3² (zero for a Gaussian: 105 − 420 − 315 + 1260 − 630 = 0);
        # Chorna et al.'s calculate_cumulant.py swaps the two coefficients
        m[8] - 28 * m[2] * m[6] - 56 * m[3] * m[5] - 35 * m[4] ** 2 + 420 * m[2] ** 2 * m[4]
        + 560 * m[2] * m[3] ** 2 - 630 * m[2] ** 4,
    ]


def test_cumulant_pooling_matches_moment_formulas():
    rng = np.random.default_rng(1)
    features = rng.gamma(2.0, size=(40, 3))  # skewed, so odd cumulants are not ~0
    segment = np.repeat([0, 1, 2, 3], [17, 12, 10, 1])
    for order in (1, 3, 8):
        pooled = pool_segments(torch.tensor(features), torch.tensor(segment), 4,
                               f"cumulants-{order}").numpy()
        assert pooled.shape == (4, 3 * order)
        for b in range(4):
            kappa = _cumulants_reference(features[segment == b])[:order]
            expected = np.concatenate(
                [kappa[0]] + [np.sign(k) * np.abs(k) ** (1 / p)
                              for p, k in enumerate(kappa[1:], start=2)])
            np.testing.assert_allclose(pooled[b], expected, rtol=1e-9, atol=1e-12)
    # a one-atom structure: every cumulant beyond the mean is 0
    assert np.all(pooled[3, 3:] == 0)


def test_kstat_agrees_for_large_samples():
    """scipy's unbiased k-statistics converge to the population cumulants."""
    from scipy.stats import kstat

    rng = np.random.default_rng(2)
    features = rng.exponential(size=(200_000, 1))
    pooled = pool_segments(torch.tensor(features), torch.zeros(len(features), dtype=torch.long),
                           1, "cumulants-4").numpy()[0]
    for p in (2, 3, 4):
        k = kstat(features[:, 0], p)
        np.testing.assert_allclose(np.sign(k) * abs(k) ** (1 / p), pooled[p - 1], rtol=1e-3)


def test_mean_std_is_mean_and_population_std():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(10, 5)).astype(np.float32)
    segment = np.repeat([0, 1], [6, 4])
    pooled = pool_segments(torch.tensor(features), torch.tensor(segment), 2, "mean_std")
    assert pooled.dtype == torch.float32 and pooled.shape == (2, 10)
    for b in range(2):
        rows = features[segment == b].astype(np.float64)
        np.testing.assert_allclose(pooled[b].numpy(), np.r_[rows.mean(0), rows.std(0)],
                                   rtol=1e-6)
    same = pool_segments(torch.tensor(features), torch.tensor(segment), 2, "cumulants-2")
    assert torch.equal(pooled, same)


def _sequential_sums(values: np.ndarray, segment: np.ndarray, n_segments: int) -> np.ndarray:
    """s_b = ((0 + v_i1) + v_i2) + ..., rows in row order: the order of ``index_add_``."""
    sums = np.zeros((n_segments, values.shape[1]))
    for row, b in zip(values, segment, strict=True):
        sums[b] = sums[b] + row
    return sums


def _bits(x: torch.Tensor) -> torch.Tensor:
    return x.view(torch.int64 if x.dtype == torch.float64 else torch.int32)


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def torch_threads(request: pytest.FixtureRequest):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def _random_cases(seed: int):
    """Random batches: sorted and unsorted segments, empty samples, −0.0 rows, wide rows."""
    rng = np.random.default_rng(seed)
    shapes = [(int(rng.integers(0, 150)), int(rng.integers(1, 70))) for _ in range(40)]
    shapes += [(0, 5), (1, 3), (60, 6384), (12, 40_000)]  # 40,000 > torch's grain size
    for case, (rows, dim) in enumerate(shapes):
        n_segments = int(rng.integers(1, 12))
        segment = rng.integers(0, n_segments + 2, rows) % n_segments  # some samples empty
        if case % 2:
            segment = np.sort(segment)
        scale = 10.0 ** rng.integers(-8, 9, (rows, 1))  # magnitudes where order matters
        values = rng.normal(size=(rows, dim)) * scale
        if case % 5 == 0 and rows:
            values[: rows // 2 + 1] = -0.0
        yield values, segment, n_segments


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sums_and_means_keep_the_bits_of_index_add(torch_threads, dtype):
    """Same bits as the row-by-row float64 sums and as the former ``index_add_`` pooling."""
    for values, segment, n_segments in _random_cases(4):
        features = torch.tensor(values, dtype=dtype)
        rows = features.double().numpy()
        reference = _sequential_sums(rows, segment, n_segments)
        counts = np.maximum(np.bincount(segment, minlength=n_segments), 1)[:, None]
        seg = torch.tensor(segment)
        former = torch.zeros((n_segments, rows.shape[1]), dtype=torch.float64)
        former.index_add_(0, seg, features.double())  # pool_segments' formula before
        assert torch.equal(_bits(former), _bits(torch.tensor(reference)))
        total = pool_segments(features, seg, n_segments, "sum")
        mean = pool_segments(features, seg, n_segments, "mean")
        assert torch.equal(_bits(total), _bits(torch.tensor(reference).to(dtype)))
        assert torch.equal(_bits(mean), _bits(torch.tensor(reference / counts).to(dtype)))
    assert torch.get_num_threads() == torch_threads



def test_every_pooling_keeps_its_bits_on_one_thread():
    """pool_segments (one torch thread) against its body run on 2 threads as before."""
    rng = np.random.default_rng(5)
    features = torch.tensor(rng.gamma(2.0, size=(400, 200)))  # 80,000 > torch's grain size
    segment = torch.tensor(rng.integers(0, 9, 400))
    numbers = torch.tensor(rng.choice([1, 6, 8, 14], 400))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for method in POOLINGS:
            pooled = pool_segments(features, segment, 9, method, numbers)
            assert torch.get_num_threads() == 2
            assert torch.equal(_bits(pooled), _bits(_pool(features, segment, 9, method, numbers)))
    finally:
        torch.set_num_threads(before)
