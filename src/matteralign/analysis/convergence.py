"""Convergence: does a model align more with the best model as its energy error falls?

The paper's Fig. 1B/3 relation, with the rank correlations and bootstrap intervals it left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "ConvergenceResult",
    "RankCorrelation",
    "alignment_intervals",
    "convergence",
    "rank_correlation",
    "rank_correlation_rows",
]


@dataclass
class RankCorrelation:
    """A rank correlation over models with a percentile bootstrap interval.

    Attributes
    ----------
    method : {"spearman", "kendall"}
    value : float
    p_value : float
        Two-sided, from scipy (asymptotic / exact as scipy chooses).
    ci_low, ci_high : float
        Percentile bootstrap interval over models resampled with replacement (NaN when too few
        resamples were non-degenerate).
    n : int
        Number of models.
    """

    method: str
    value: float
    p_value: float
    ci_low: float
    ci_high: float
    n: int


def rank_correlation(
    x: np.ndarray,
    y: np.ndarray,
    method: str = "spearman",
    n_bootstrap: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> RankCorrelation:
    """Spearman ρ or Kendall τ_b of (x, y) with a bootstrap interval from resampling models.

    Parameters
    ----------
    x, y : (M,) arrays
        One value per model (e.g. energy MAE in eV and alignment to the best model).
    method : {"spearman", "kendall"}
    n_bootstrap : int
        Resamples of the M models (with replacement, ``default_rng(seed)``), scored in one
        vectorised pass; resamples where x or y is constant are skipped.
    level : float
        Coverage of the interval.
    """
    if method not in ("spearman", "kendall"):
        raise ValueError(f"method must be 'spearman' or 'kendall', not {method!r}")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    m = len(x)
    if m < 3:
        raise ValueError(f"a rank correlation needs at least 3 models, got {m}")
    res = (stats.spearmanr if method == "spearman" else stats.kendalltau)(x, y)
    value, p = float(res[0]), float(res[1])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, m, (n_bootstrap, m))
    boots = rank_correlation_rows(x[idx], y[idx], method)
    boots = boots[np.isfinite(boots)]
    if len(boots) >= max(10, n_bootstrap // 10):
        lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    else:
        lo = hi = float("nan")
    return RankCorrelation(method, value, p, float(lo), float(hi), m)


def rank_correlation_rows(x: np.ndarray, y: np.ndarray, method: str) -> np.ndarray:
    """Spearman ρ or Kendall τ_b of each row pair of (B, M) arrays; NaN where a row is constant.

    ρ: Pearson correlation of average ranks. τ_b: Σ s_x s_y / √(Σ s_x² Σ s_y²) over index pairs
    i < j with s = sign of the difference, which counts ties as scipy's tau-b does.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "spearman":
            rx = stats.rankdata(x, axis=1)
            ry = stats.rankdata(y, axis=1)
            rx -= rx.mean(1, keepdims=True)
            ry -= ry.mean(1, keepdims=True)
            return (rx * ry).sum(1) / np.sqrt((rx**2).sum(1) * (ry**2).sum(1))
        i, j = np.triu_indices(x.shape[1], 1)
        sx, sy = np.sign(x[:, i] - x[:, j]), np.sign(y[:, i] - y[:, j])
        return (sx * sy).sum(1) / np.sqrt((sx**2).sum(1) * (sy**2).sum(1))


@dataclass
class ConvergenceResult:
    """Each model's energy error against its alignment to the best (lowest-error) model.

    Attributes
    ----------
    table : DataFrame
        model, mae (eV), alignment (to the reference), is_reference.
    reference : str
        The lowest-MAE model.
    metric : str
        Metric id of the alignment.
    correlations : list of RankCorrelation
        Spearman and Kendall over the non-reference models (empty when fewer than 3).
    note : str
        Why correlations are missing, if they are.
    """

    table: pd.DataFrame
    reference: str
    metric: str
    correlations: list[RankCorrelation]
    note: str = ""


def convergence(
    mae: pd.Series,
    alignment: pd.DataFrame,
    metric: str,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> ConvergenceResult:
    """Alignment of each model to the lowest-MAE model, and its rank correlation with the MAE.

    Parameters
    ----------
    mae : Series
        Energy regression MAE (eV) per model id; models without energies are left out.
    alignment : (M, M) DataFrame
        Alignment matrix; ``alignment.loc[model, reference]`` is used.
    metric : str
        Id of the alignment metric, recorded in the result.

    Returns
    -------
    ConvergenceResult
        The correlation is expected negative: lower error, higher alignment.
    """
    mae = mae.dropna()
    mae = mae[[m for m in mae.index if m in alignment.index]]
    if mae.empty:
        raise ValueError("no model has both an energy MAE and an alignment score")
    reference = str(mae.idxmin())
    table = pd.DataFrame({
        "model": list(mae.index),
        "mae": mae.to_numpy(dtype=float),
        "alignment": [float(alignment.loc[m, reference]) for m in mae.index],
        "is_reference": [m == reference for m in mae.index],
    })
    others = table[~table.is_reference]
    correlations: list[RankCorrelation] = []
    note = ""
    if len(others) >= 3:
        for method in ("spearman", "kendall"):
            correlations.append(rank_correlation(others.mae.to_numpy(), others.alignment.to_numpy(),
                                                 method, n_bootstrap=n_bootstrap, seed=seed))
    else:
        note = (f"only {len(others)} model(s) besides the reference {reference} have energies; "
                "a rank correlation needs at least 3")
    return ConvergenceResult(table, reference, metric, correlations, note)


def alignment_intervals(
    result: ConvergenceResult,
    embeddings: dict[str, np.ndarray],
    n_resamples: int = 50,
    level: float = 0.95,
    seed: int = 0,
    preprocessing: tuple[str, ...] | list[str] = (),
) -> ConvergenceResult:
    """Intervals on each model's alignment to the reference, from resampling samples.

    One :func:`~matteralign.metrics.bootstrap_ci` call (subsampling without replacement, all pairs
    per round) over the models of ``result.table``; adds ``ci_low`` and ``ci_high`` to the table
    (NaN for the reference itself).

    Parameters
    ----------
    result : ConvergenceResult
        With ``result.metric`` a raw registry id.
    embeddings : mapping of model id to (N, D) array
        The embeddings the alignment was scored from.
    """
    from matteralign import metrics

    models = [m for m in result.table.model if m in embeddings]
    if len(models) < 2 or result.reference not in models:
        return result
    ci = metrics.bootstrap_ci({m: embeddings[m] for m in models}, result.metric, n_resamples,
                              seed, level, preprocessing=preprocessing, progress=False)
    spec = metrics.get_metric(result.metric)
    lookup = {(r.model_a, r.model_b): (r.ci_low, r.ci_high) for r in ci.itertuples()}

    def bounds(model: str) -> tuple[float, float]:
        if model == result.reference:
            return float("nan"), float("nan")
        hit = lookup.get((model, result.reference))
        if hit is None and spec.symmetric:
            hit = lookup.get((result.reference, model))
        return hit if hit is not None else (float("nan"), float("nan"))

    lows, highs = zip(*(bounds(m) for m in result.table.model), strict=True)
    result.table = result.table.assign(ci_low=list(lows), ci_high=list(highs))
    return result
