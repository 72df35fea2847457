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


def rank_stability(sweep: pd.DataFrame, n_permutations: int = 999, seed: int = 0
                   ) -> pd.DataFrame:
    """Kendall τ_b between the rankings of model pairs at successive k, with a model-level p.

    The pairs share models, so they are not independent and scipy's p-value (which assumes they
    are) is far too small. The p-value here is a Mantel test: the models' labels at the larger k
    are permuted (each permutation relabels whole rows and columns of the pair matrix, keeping
    its dependence), τ_b is recomputed, and p = (1 + #{τ_π >= τ}) / (1 + R) (one-sided: stable
    rankings give τ > 0).

    Parameters
    ----------
    sweep : DataFrame
        Output of :func:`cknna_k_sweep` (optionally with a ``dataset`` column, handled per dataset).
    n_permutations : int
        R, seeded with ``default_rng(seed)``.

    Returns
    -------
    DataFrame
        [dataset,] k_from, k_to, kendall_tau, p_value (Mantel), n_pairs, n_models. τ is NaN with
        fewer than 2 pairs.
    """
    from matteralign.analysis.convergence import rank_correlation_rows

    groups = sweep.groupby("dataset", sort=False) if "dataset" in sweep else [(None, sweep)]
    recs = []
    for dataset, grp in groups:
        wide = grp.pivot_table(index=["model_a", "model_b"], columns="k", values="value")
        models = sorted(set(wide.index.get_level_values(0)) | set(wide.index.get_level_values(1)))
        pos = {m: i for i, m in enumerate(models)}
        ia = np.array([pos[a] for a, _ in wide.index])
        ib = np.array([pos[b] for _, b in wide.index])
        ks = sorted(wide.columns)
        rng = np.random.default_rng(seed)
        perms = np.stack([rng.permutation(len(models)) for _ in range(n_permutations)])
        for k0, k1 in zip(ks[:-1], ks[1:], strict=True):
            a, b = wide[k0].to_numpy(), wide[k1].to_numpy()
            tau = p = float("nan")
            if len(a) >= 2 and np.ptp(a) > 0 and np.ptp(b) > 0:
                tau = float(stats.kendalltau(a, b)[0])
                sym = np.full((len(models), len(models)), np.nan)
                sym[ia, ib] = sym[ib, ia] = b
                moved = sym[perms[:, ia], perms[:, ib]]           # (R, n_pairs)
                null = rank_correlation_rows(np.broadcast_to(a, moved.shape), moved, "kendall")
                p = float((1 + np.sum(null >= tau - 1e-12)) / (1 + n_permutations))
            rec = {"k_from": k0, "k_to": k1, "kendall_tau": tau, "p_value": p,
                   "n_pairs": len(a), "n_models": len(models)}
            if dataset is not None:
                rec = {"dataset": dataset, **rec}
            recs.append(rec)
    return pd.DataFrame(recs)
