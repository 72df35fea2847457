"""Pooling per sample against explicit loops in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matteralign.models.pooling import pool_segments


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
