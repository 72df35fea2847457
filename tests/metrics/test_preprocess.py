from __future__ import annotations

import numpy as np
import pytest

from matteralign.metrics import (
    EmbeddingError,
    apply_preprocessing,
    clamp_outliers,
    l2_normalise,
    max_abs_normalise,
)


def test_steps():
    x = np.random.default_rng(0).normal(size=(50, 6))
    np.testing.assert_allclose(np.linalg.norm(l2_normalise(x), axis=1), 1.0)
    assert np.abs(max_abs_normalise(x)).max() == 1.0
    v = np.quantile(np.abs(x), 0.95)
    c = clamp_outliers(x, 0.95)
    assert np.abs(c).max() == pytest.approx(v)
    np.testing.assert_allclose(apply_preprocessing(x, ("clamp-q0.95", "l2")), l2_normalise(c))
    np.testing.assert_array_equal(apply_preprocessing(x, ()), x)


def test_errors():
    with pytest.raises(EmbeddingError, match="row 1"):
        l2_normalise(np.array([[1.0, 0], [0, 0]]))
    with pytest.raises(EmbeddingError):
        max_abs_normalise(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="unknown"):
        apply_preprocessing(np.ones((3, 2)), ("zscore",))
