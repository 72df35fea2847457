from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matteralign.metrics import EmbeddingError, mutual_knn
from tests.metrics.test_cknna import topk_mask


def mutual_knn_dense(x, y, k):
    return float((topk_mask(x @ x.T, k) * topk_mask(y @ y.T, k)).sum() / (x.shape[0] * k))


@pytest.mark.parametrize("k", [1, 5, 20])
def test_matches_dense(pair, k):
    x, y = pair
    assert mutual_knn(x, y, k) == mutual_knn_dense(x, y, k)


def test_self_is_one_and_errors(pair):
    x, y = pair
    assert mutual_knn(x, x, 4) == 1.0
    with pytest.raises(EmbeddingError):
        mutual_knn(x, y[:5], 3)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6))
def test_properties(seed, k):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(25, 3)), rng.normal(size=(25, 4))
    v = mutual_knn(x, y, k)
    p = rng.permutation(25)
    assert mutual_knn(x[p], y[p], k) == v
    assert mutual_knn(y, x, k) == v
    assert 0.0 <= v <= 1.0
