"""CKNNA against its neighbourhood size k, and how stable the ranking of model pairs stays.

The paper's Fig. A1 check that k = 25 conclusions hold more globally, with Kendall τ added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["DEFAULT_KS", "cknna_k_sweep", "rank_stability", "sweep_ks"]

DEFAULT_KS = (2, 25, 50, 100, 1000, 2500)


def sweep_ks(n: int, ks: Sequence[int] = DEFAULT_KS) -> list[int]:
    """The k values usable with N samples: each capped at N - 1, duplicates dropped, ascending."""
    if n < 3:
        raise ValueError(f"a k sweep needs at least 3 samples, got {n}")
    return sorted({min(int(k), n - 1) for k in ks if k >= 2})


def cknna_k_sweep(
    embeddings: Mapping[str, np.ndarray],
    ks: Sequence[int] = DEFAULT_KS,
    preprocessing: Sequence[str] = (),
) -> pd.DataFrame:
    """CKNNA of every model pair at each k of :func:`sweep_ks`.

    Parameters
    ----------
    embeddings : mapping of model id to (N, D) array
        Rows are the same samples in the same order for every model.
    ks : sequence of int
    preprocessing : sequence of str
        Steps of :func:`matteralign.metrics.apply_preprocessing`.

    Returns
    -------
    DataFrame
        k, model_a, model_b, value (one row per unordered pair and k).
    """
    from matteralign import metrics

    n = next(iter(embeddings.values())).shape[0]
    frames = []
    for k in sweep_ks(n, ks):
        matrix = metrics.pairwise(embeddings, "cknna", k=k, preprocessing=preprocessing,
                                  progress=False).matrix
        names = list(matrix.index)
        frames.append(pd.DataFrame(
            [{"model_a": a, "model_b": b, "value": float(matrix.loc[a, b])}
             for i, a in enumerate(names) for b in names[i + 1:]],
            columns=["model_a", "model_b", "value"]).assign(k=k))
    return pd.concat(frames, ignore_index=True)[["k", "model_a", "model_b", "value"]]


def rank_stability(sweep: pd.DataFrame) -> pd.DataFrame:
    """Kendall τ_b between the rankings of model pairs at successive k.

    Parameters
    ----------
    sweep : DataFrame
        Output of :func:`cknna_k_sweep` (optionally with a ``dataset`` column, handled per dataset).

    Returns
    -------
    DataFrame
        [dataset,] k_from, k_to, kendall_tau, p_value, n_pairs. τ is NaN with fewer than 2 pairs.
    """
    groups = sweep.groupby("dataset", sort=False) if "dataset" in sweep else [(None, sweep)]
    recs = []
    for dataset, grp in groups:
        wide = grp.pivot_table(index=["model_a", "model_b"], columns="k", values="value")
        ks = sorted(wide.columns)
        for k0, k1 in zip(ks[:-1], ks[1:], strict=True):
            a, b = wide[k0].to_numpy(), wide[k1].to_numpy()
            if len(a) >= 2 and np.ptp(a) > 0 and np.ptp(b) > 0:
                tau, p = stats.kendalltau(a, b)
            else:
                tau, p = float("nan"), float("nan")
            rec = {"k_from": k0, "k_to": k1, "kendall_tau": float(tau), "p_value": float(p),
                   "n_pairs": len(a)}
            if dataset is not None:
                rec = {"dataset": dataset, **rec}
            recs.append(rec)
    return pd.DataFrame(recs)
