"""Intrinsic dimension from nearest-neighbour distance ratios: TwoNN, Levina-Bickel MLE, GRIDE.

Every estimator is a function of one model's Euclidean neighbour list, computed exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import optimize, special

from ._checks import EmbeddingError, as_embedding
from .neighbours import nearest_neighbours

__all__ = ["intrinsic_dimension"]

DEFAULT_K = {"twonn": 2, "mle": 50, "gride": 8}


def _need_positive(r: np.ndarray, name: str) -> None:
    zero = np.flatnonzero(r[:, 0] <= 0)
    if zero.size:
        raise EmbeddingError(
            f"{name}: {zero.size} sample(s) have a duplicate row (nearest-neighbour distance 0, "
            f"first: row {zero[0]}); intrinsic dimension needs distinct points: drop duplicates "
            "(np.unique(x, axis=0)) first."
        )


def twonn_from_distances(r: np.ndarray, discard: float = 0.1, name: str = "x") -> float:
    """TwoNN (Facco et al. 2017) from (N, >=2) sorted neighbour distances.

    mu_i = r_2(i) / r_1(i); sort; keep the smallest n_eff = int(N (1 - discard)) values;
    fit -ln(1 - i/N) = d ln mu_(i), i = 1..n_eff, by least squares through the origin:
    d = sum_i x_i y_i / sum_i x_i^2 (DADApy ``compute_id_2NN`` "base", skdim ``TwoNN``).

    Raises
    ------
    EmbeddingError
        When every kept mu_i is 1 (r_2 = r_1: tied distances, e.g. points of a lattice or a
        simplex), where the fit is 0 / 0.
    """
    n = r.shape[0]
    mu = np.sort(np.log(r[:, 1] / r[:, 0]))
    n_eff = int(n * (1.0 - discard))
    xs = mu[:n_eff]
    ys = -np.log(1.0 - np.arange(1, n_eff + 1) / n)
    if not np.dot(xs, xs) > 0:
        raise EmbeddingError(
            f"{name}: TwoNN is undefined: the first and second neighbour distances are tied "
            f"(r2 = r1) for all {n_eff} samples the fit keeps ({int(np.sum(mu == 0))} of {n} "
            "overall); the points lie on a lattice or are equidistant. Use another estimator "
            "(id-gride) or data without tied distances."
        )
    return float(np.dot(xs, ys) / np.dot(xs, xs))


def mle_from_distances(r: np.ndarray, k: int, name: str = "x") -> float:
    """Levina-Bickel MLE at k from (N, >=k) sorted neighbour distances T_1..T_k.

    m_i = [ (1/(k-1)) sum_{j=1}^{k-1} ln(T_k(i) / T_j(i)) ]^-1,  m = mean_i m_i
    (the arithmetic mean over samples; skdim's ``MLE`` default combines the m_i by a harmonic mean).

    Raises
    ------
    EmbeddingError
        When a sample has all k neighbours at one distance (T_1 = T_k, tied distances), where
        m_i is infinite.
    """
    lr = np.log(r[:, k - 1 : k] / r[:, : k - 1]).sum(1)
    tied = np.flatnonzero(lr <= 0)
    if tied.size:
        raise EmbeddingError(
            f"{name}: the MLE at k={k} is infinite: {tied.size} of {r.shape[0]} samples have all "
            f"{k} neighbours at the same distance (first: row {tied[0]}); the points lie on a "
            "lattice or are equidistant. Use a larger k or data without tied distances."
        )
    return float(np.mean((k - 1) / lr))


def gride_from_distances(
    r: np.ndarray, n1: int, d_bounds: tuple[float, float] = (1e-3, 1e3)
) -> float:
    """GRIDE (Denti et al. 2022): maximum likelihood d of mu_i = r_{2 n1}(i) / r_{n1}(i).

    With n2 = 2 n1, f(mu) = d (mu^d - 1)^(n2-n1-1) / (B(n2-n1, n1) mu^((n2-1) d + 1)); the MLE
    solves N/d + (n2-n1-1) sum_i mu_i^d ln mu_i / (mu_i^d - 1) - (n2-1) sum_i ln mu_i = 0
    (Brent's method on ``d_bounds``). Unlike DADApy, no mu outliers are filtered.
    """
    n2 = 2 * n1
    lmu = np.log(r[:, n2 - 1] / r[:, n1 - 1])
    n = lmu.size
    if np.any(lmu <= 0):
        raise EmbeddingError(
            f"gride: {int(np.sum(lmu <= 0))} sample(s) have r_{n2} == r_{n1} (tied distances); "
            "drop duplicate points or use another k."
        )

    def score(d: float) -> float:
        t = d * lmu
        return n / d + (n2 - n1 - 1) * float(np.sum(lmu / -np.expm1(-t))) - (n2 - 1) * float(
            lmu.sum()
        )

    lo, hi = d_bounds
    if score(lo) * score(hi) > 0:
        return lo if score(hi) < 0 else hi
    return float(optimize.brentq(score, lo, hi, xtol=1e-12, rtol=4 * np.finfo(float).eps))


def gride_log_likelihood(d: float, mu: np.ndarray, n1: int) -> float:
    """GRIDE log-likelihood (used by tests as an independent check)."""
    n2 = 2 * n1
    return float(
        np.sum(
            np.log(d)
            + (n2 - n1 - 1) * np.log(mu**d - 1)
            - np.log(special.beta(n2 - n1, n1))
            - ((n2 - 1) * d + 1) * np.log(mu)
        )
    )


def intrinsic_dimension(
    x: np.ndarray,
    method: str = "twonn",
    k: int | None = None,
    discard: float = 0.1,
    device: Any = "cpu",
) -> float:
    """Intrinsic dimension of one embedding.

    - ``"twonn"`` (Facco et al. 2017): linear fit of -ln(1 - F(mu)) = d ln mu on mu = r_2 / r_1,
      discarding the largest 10 % of mu (DADApy / skdim default); ``k`` is ignored.
    - ``"mle"`` (Levina & Bickel 2005) at k neighbours (default 50, the paper's choice):
      mean over samples of [(1/(k-1)) sum_{j<k} ln(T_k / T_j)]^-1.
    - ``"gride"`` (Denti et al. 2022) at scale n1 = k (default 8), n2 = 2k.

    Distances are Euclidean, on all N samples, from an exact neighbour search.

    Parameters
    ----------
    x : (N, D) array
    method : {"twonn", "mle", "gride"}
    k : int, optional
    discard : float
        TwoNN fraction of the largest mu discarded.
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    float

    Raises
    ------
    EmbeddingError
        Duplicate rows (a zero nearest-neighbour distance), tied distances that make the
        estimate 0/0 or infinite (TwoNN, MLE; GRIDE), or N <= k.
    """
    if method not in DEFAULT_K:
        raise ValueError(f"method must be one of {sorted(DEFAULT_K)}, got {method!r}.")
    k = DEFAULT_K[method] if (k is None or method == "twonn") else int(k)
    n_nb = 2 * k if method == "gride" else k
    x = as_embedding(x, "x", min_samples=3)
    g = nearest_neighbours(x, n_nb, "euclidean", device, name="x")
    return id_from_graph_values(g.values, method, k, discard, "x")


def id_from_graph_values(r: np.ndarray, method: str, k: int, discard: float, name: str) -> float:
    """Dispatch an estimator on cached (N, >=k) Euclidean neighbour distances."""
    _need_positive(r, name)
    if method == "twonn":
        return twonn_from_distances(r, discard, name)
    if method == "mle":
        if k < 2:
            raise EmbeddingError(f"mle needs k >= 2, got {k}.")
        return mle_from_distances(r, k, name)
    return gride_from_distances(r, k)
