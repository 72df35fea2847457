"""Distance correlation (Szekely, Rizzo & Bakirov 2007), squared, biased or U-centred.

Streamed over row blocks with the row-sum identity and float64 sums; never holds an N x N matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import resolve_backend
from ._checks import EmbeddingError, as_embedding, check_same_samples
from .streams import centred_product, cross_sums

__all__ = ["distance_correlation"]


def dcor_from_sums(s: np.ndarray, rs: np.ndarray, n: int, unbiased: bool) -> np.ndarray:
    """All-pairs squared dCor from S[a, b] = sum_ij a_ij b_ij and row sums rs[a] (one pass).

    Returns
    -------
    (M, M) float64; NaN where a model's distance variance is not positive.
    """
    c = centred_product(s, rs[:, None, :], rs[None, :, :], n, unbiased)
    d = np.diag(c).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        den = np.sqrt(np.where(d > 0, d, np.nan))
        return c / den[:, None] / den[None, :]


def distance_correlation(
    x: np.ndarray,
    y: np.ndarray,
    unbiased: bool = False,
    device: Any = "cpu",
    precision: str | None = None,
) -> float:
    """Squared distance correlation.

    a_ij = ||x_i - x_j||_2, A = double-centred a (A_ij = a_ij - a_i. /N - a_.j /N + a_.. /N^2),
    B likewise from y;

        dCor^2 = sum_ij A_ij B_ij / sqrt(sum_ij A_ij^2 * sum_ij B_ij^2)

    (dcor's ``distance_correlation_sqr``). ``unbiased=True`` uses U-centring (Szekely & Rizzo 2014):
    A~_ij = a_ij - a_i./(N-2) - a_.j/(N-2) + a_../((N-1)(N-2)) for i != j, A~_ii = 0, which equals
    dcor's ``u_distance_correlation_sqr`` and can be negative.

    Computed as S - (2/N) sum_i a_i. b_i. + a.. b.. / N^2 (biased; U-centred analogue) from
    S = sum_ij a_ij b_ij and row sums, accumulated in float64 over row blocks.

    Parameters
    ----------
    x : (N, D_x) array
    y : (N, D_y) array
    unbiased : bool
        U-centred estimator (needs N >= 4).
    device : {"cpu", "cuda", "auto"}
    precision : {"float64", "float32"}, optional
        Distance-tile GEMM precision (default float64 on CPU).

    Returns
    -------
    float
    """
    x = as_embedding(x, "x", min_samples=4 if unbiased else 2)
    y = as_embedding(y, "y", min_samples=4 if unbiased else 2)
    check_same_samples(x, y)
    be = resolve_backend(device, precision)
    s, rs, _ = cross_sums([x, y], None, be, "distance")
    r = dcor_from_sums(s, rs, x.shape[0], unbiased)
    if np.isnan(r[0, 1]):
        raise EmbeddingError(
            "x or y: all rows are identical (zero distance variance); distance correlation is "
            "undefined."
        )
    return float(r[0, 1])
