from __future__ import annotations

import numpy as np
import pytest

from matteralign.metrics import EmbeddingError
from matteralign.metrics._checks import as_embedding, check_k, check_same_samples


def test_as_embedding():
    assert as_embedding([[1, 2], [3, 4]]).dtype == np.float64
    with pytest.raises(EmbeddingError, match="2-D"):
        as_embedding(np.ones(3), "model_a")
    with pytest.raises(EmbeddingError, match="model_a: 1 row"):
        as_embedding(np.array([[1.0, np.inf], [0, 0]]), "model_a")
    with pytest.raises(EmbeddingError, match="no feature"):
        as_embedding(np.ones((3, 0)))
    with pytest.raises(EmbeddingError, match="at least 4"):
        as_embedding(np.ones((3, 2)), min_samples=4)
    assert issubclass(EmbeddingError, ValueError)


def test_k_and_n():
    assert check_k(3, 4) == 3
    with pytest.raises(EmbeddingError):
        check_k(4, 4)
    with pytest.raises(EmbeddingError):
        check_k(0, 4)
    with pytest.raises(EmbeddingError, match="3 samples but y has 2"):
        check_same_samples(np.ones((3, 1)), np.ones((2, 1)))


def test_device_value_checks_match_host_checks():
    import torch

    from matteralign.metrics._checks import check_values_on_device

    x = np.random.default_rng(0).normal(size=(6, 3))
    check_values_on_device(torch.as_tensor(x), "m")
    x[4, 1] = np.nan
    with pytest.raises(EmbeddingError, match=r"m: 1 row\(s\) contain NaN or inf \(first: row 4\)"):
        check_values_on_device(torch.as_tensor(x), "m")
    with pytest.raises(EmbeddingError, match="m: all 6 rows are identical"):
        check_values_on_device(torch.ones(6, 3), "m")
