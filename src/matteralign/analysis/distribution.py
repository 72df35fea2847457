"""In- versus out-of-distribution alignment: score distributions over model pairs per dataset.

Also the information-imbalance plane, Δ(a→b) against Δ(b→a), with each pair's symmetric scores.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["compare_in_out", "information_plane", "pair_scores"]


def pair_scores(matrices: Mapping[str, pd.DataFrame], dataset: str, ood: bool) -> pd.DataFrame:
    """One row per unordered model pair of one dataset with every metric's score.

    Parameters
    ----------
    matrices : mapping of metric id to (M, M) DataFrame
        Directed metrics (information imbalance, ridge reconstruction: ``MetricSpec.directed``)
        give two columns, ``<id>:a->b`` and ``<id>:b->a``, and a symmetric summary ``<id>`` =
        their mean; the others give score(a -> b).
    dataset : str
    ood : bool
        Whether the dataset is out of distribution for the models.

    Returns
    -------
    DataFrame
        dataset, ood, model_a, model_b, then one column per metric.
    """
    from matteralign.metrics import get_metric

    if not matrices:
        return pd.DataFrame(columns=["dataset", "ood", "model_a", "model_b"])
    directed = {metric: get_metric(metric).directed for metric in matrices}
    names = list(next(iter(matrices.values())).index)
    recs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            rec: dict[str, object] = {"dataset": dataset, "ood": bool(ood), "model_a": a,
                                      "model_b": b}
            for metric, mat in matrices.items():
                if a not in mat.index or b not in mat.index:
                    continue
                ab, ba = float(mat.loc[a, b]), float(mat.loc[b, a])
                if directed[metric]:
                    rec[f"{metric}:a->b"], rec[f"{metric}:b->a"] = ab, ba
                    rec[metric] = 0.5 * (ab + ba)
                else:
                    rec[metric] = ab
            recs.append(rec)
    return pd.DataFrame(recs)


def information_plane(pairs: pd.DataFrame, ii_metric: str) -> pd.DataFrame:
    """The information-imbalance plane: x = Δ(a→b), y = Δ(b→a), one point per pair.

    Reading (Glielmo et al. 2022): both near 0 = the same information; both near 1 = orthogonal;
    (0, 1) = b's information is contained in a's.

    Returns
    -------
    DataFrame
        ``pairs`` with columns ``delta_ab`` and ``delta_ba`` added.
    """
    out = pairs.copy()
    out["delta_ab"] = out[f"{ii_metric}:a->b"]
    out["delta_ba"] = out[f"{ii_metric}:b->a"]
    return out


def compare_in_out(pairs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Summaries of each metric's pair scores per dataset, and an ID-vs-OOD rank test.

    Parameters
    ----------
    pairs : DataFrame
        Rows from :func:`pair_scores` of several datasets, concatenated.
    metrics : list of str
        Metric columns to summarise.

    Returns
    -------
    DataFrame
        One row per (metric, dataset) with ood, n_pairs, median, q25, q75; plus one row per metric
        with dataset ``"ID vs OOD"``: medians of each group, the Mann–Whitney U two-sided p-value
        and the rank-biserial effect size r = 2 U / (n_id n_ood) - 1 (positive: ID pairs score
        higher). Pairs are not independent (models recur), so read p as descriptive.
    """
    recs = []
    for metric in metrics:
        if metric not in pairs:
            continue
        for (dataset, ood), grp in pairs.groupby(["dataset", "ood"], sort=False):
            v = grp[metric].dropna().to_numpy(dtype=float)
            if not len(v):
                continue
            recs.append({"metric": metric, "dataset": dataset, "ood": ood, "n_pairs": len(v),
                         "median": float(np.median(v)), "q25": float(np.quantile(v, 0.25)),
                         "q75": float(np.quantile(v, 0.75))})
        vin = pairs.loc[~pairs.ood, metric].dropna().to_numpy(dtype=float)
        vout = pairs.loc[pairs.ood, metric].dropna().to_numpy(dtype=float)
        if len(vin) and len(vout):
            u, p = stats.mannwhitneyu(vin, vout, alternative="two-sided")
            recs.append({"metric": metric, "dataset": "ID vs OOD", "ood": None,
                         "n_pairs": len(vin) + len(vout), "median_id": float(np.median(vin)),
                         "median_ood": float(np.median(vout)), "mannwhitney_p": float(p),
                         "rank_biserial": float(2 * u / (len(vin) * len(vout)) - 1)})
    return pd.DataFrame(recs)
