"""Bootstrap intervals of a statistic over model pairs, resampling models rather than pairs.

Pairs that share a model are not independent, so the resampled unit is the model; every analysis
that puts an interval on a statistic over pairs (matched in/out, the reproduction claims) uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["model_bootstrap_interval"]


def model_bootstrap_interval(
    model_a: Sequence[str] | np.ndarray,
    model_b: Sequence[str] | np.ndarray,
    statistic: Callable[[np.ndarray], float],
    n_bootstrap: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    min_pairs: int = 1,
) -> tuple[float, float]:
    """Percentile interval of a statistic over model pairs, from resampling models.

    The M distinct models of ``model_a`` and ``model_b`` (sorted) are the resampled units. Each of
    the ``n_bootstrap`` draws takes M models with replacement (``default_rng(seed)``, one
    ``integers(0, M, (n_bootstrap, M))`` call) and gives model m its multiplicity c_m (how often
    it was drawn, sum_m c_m = M). The bootstrap sample of pairs holds every pair of distinct
    drawn copies, so pair p = (a_p, b_p) appears

        w_p = c_{a_p} * c_{b_p}

    times, and ``statistic(w)`` is evaluated with these integer weights. For a mean,
    sum_p w_p d_p / sum_p w_p; a statistic that takes no weights (Spearman's rho) is evaluated on
    the pairs repeated w_p times (``np.repeat(x, w)``), which is the same bootstrap sample: the
    weighted and repeated forms are equal.

    Multiplicity weights are the standard bootstrap over models for pair statistics: a draw is
    a sample of M models with replacement, and a model drawn twice counts twice in every pair it
    is in. Keeping only the pairs whose two models were drawn (a 0/1 mask) would instead treat a
    draw as a subsample of distinct models, about 0.63 M of them, and give intervals of another
    sample size.

    Draws with fewer than ``min_pairs`` pairs of positive weight, and draws whose statistic is
    not finite, are skipped; the interval is NaN when fewer than max(10, n_bootstrap // 10)
    draws remain.

    Parameters
    ----------
    model_a, model_b : (P,) sequences of str
        The two models of each pair; a pair may appear in one order or in both.
    statistic : callable (P,) int array -> float
        The statistic of the pairs given each pair's weight w_p (zero for pairs left out).
    n_bootstrap : int
        Number of draws.
    level : float
        Coverage; the interval is the (1 - level)/2 and (1 + level)/2 quantiles of the draws.
    seed : int
        Seeds the draws: equal inputs and seed give equal intervals.
    min_pairs : int
        Fewest pairs with w_p > 0 for a draw to count (3 for a rank correlation).

    Returns
    -------
    (ci_low, ci_high) : tuple of float
    """
    a, b = np.asarray(model_a), np.asarray(model_b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"model_a and model_b must be 1-d of equal length, got shapes "
                         f"{a.shape} and {b.shape}")
    same = a == b
    if same.any():
        raise ValueError(f"pair ({a[same][0]}, {b[same][0]}) pairs a model with itself; "
                         "pass pairs of distinct models")
    models, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = codes[:len(a)], codes[len(a):]
    m = len(models)
    draws = np.random.default_rng(seed).integers(0, m, (n_bootstrap, m))
    counts = np.bincount((draws + m * np.arange(n_bootstrap)[:, None]).ravel(),
                         minlength=n_bootstrap * m).reshape(n_bootstrap, m)
    weights = counts[:, ia] * counts[:, ib]
    values = np.array([statistic(w) for w in weights if np.count_nonzero(w) >= min_pairs],
                      dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < max(10, n_bootstrap // 10):
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
