"""Information imbalance (Glielmo et al. 2022) between two Euclidean spaces, on all N points.

Asymmetric: Delta(x -> y) is small when x's neighbourhoods predict y's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import resolve_backend
from ._checks import as_embedding, check_k, check_same_samples
from .neighbours import nearest_neighbours
from .streams import rank_sums

__all__ = ["information_imbalance"]


def imbalance_from_rank_sums(r: np.ndarray, n: int, k: int) -> np.ndarray:
    """Delta = 2 / (N^2 k) * (sum of ranks)."""
    return 2.0 * r / (n * n * k)


def information_imbalance(
    x: np.ndarray,
    y: np.ndarray,
    k: int = 1,
    device: Any = "cpu",
    precision: str | None = None,
) -> float:
    """Information imbalance Delta(x -> y), exact on all N points.

        Delta(x -> y) = 2 / (N^2 k) * sum_i sum_{j in kNN_x(i)} rank_y(i, j)

    kNN_x(i): the k nearest rows of i in x (Euclidean; self excluded by index; ties by lowest
    index). rank_y(i, j) = 1 + #{l != i : d_y(i, l) < d_y(i, j)} (1 = nearest; tied distances share
    the smallest rank). This is DADApy's mean rank / (N / 2) with ``subset_size = N``: no
    subsampling and no random ranks beyond a truncated list. Delta(x -> x) = (k + 1) / N;
    about 1 for unrelated spaces.

    Parameters
    ----------
    x : (N, D_x) array
    y : (N, D_y) array
    k : int
        Neighbours of x averaged, 1 <= k <= N - 1.
    device : {"cpu", "cuda", "auto"}
    precision : {"float64", "float32"}, optional

    Returns
    -------
    float
    """
    x = as_embedding(x, "x")
    y = as_embedding(y, "y")
    check_same_samples(x, y)
    k = check_k(k, x.shape[0], "x")
    be = resolve_backend(device, precision)
    g = nearest_neighbours(x, k, "euclidean", be, name="x")
    r = rank_sums([g.indices], [y], be)
    return float(imbalance_from_rank_sums(r, x.shape[0], k)[0, 0])
