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


@pytest.mark.parametrize("steps", [("l2",), ("max-abs",), ("clamp-q0.95",), ("clamp-q0.5", "l2"),
                                   ("clamp-q1", "max-abs", "l2")])
def test_tensor_steps_equal_numpy_steps(steps):
    """The steps that run where the data is scored (torch, e.g. on a GPU) give the NumPy result."""
    import torch

    from matteralign.metrics.preprocess import preprocess_values

    x = np.random.default_rng(1).normal(size=(37, 5)) * np.arange(1, 6)
    got = preprocess_values(torch.as_tensor(x), steps)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), apply_preprocessing(x, steps), rtol=1e-14, atol=0)


def test_tensor_zero_row_is_named():
    import torch

    from matteralign.metrics.preprocess import preprocess_values

    with pytest.raises(EmbeddingError, match="row 1"):
        preprocess_values(torch.tensor([[1.0, 0.0], [0.0, 0.0]]).double(), ("l2",))
