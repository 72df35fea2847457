"""Calibrated scores of a dataset's alignment matrices, and the guard rails on k / N.

Every pairwise matrix gets its permutation null, p-values with Benjamini-Hochberg FDR across the
matrix's pairs, and the calibrated score (obs - tau) / (s_best - tau)
(:mod:`matteralign.metrics.calibration`). A neighbour measure whose id leaves k unset ("cknna")
is scored with k from N (:func:`choose_k`, applied by :func:`scored_metric`); one that sets k
keeps it and is flagged above :data:`K_OVER_N_LIMIT` (:func:`k_flags`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matteralign.metrics.registry import MetricSpec

__all__ = [
    "K_OVER_N_LIMIT",
    "calibrate_matrices",
    "choose_k",
    "k_flags",
    "k_over_n",
    "rounds_for",
    "scored_metric",
    "sets_k",
    "study_metric_id",
]

#: Neighbour measures are flagged when k / N exceeds this: CKNNA leaves [-1, 1] from k/N ~ 0.4
#: (1.12 at N = 60, k = 25) and its two argument orders differ by 19-44 % at N = k + 2.
K_OVER_N_LIMIT = 0.1


def choose_k(n: int, default: int = 25, limit: float = K_OVER_N_LIMIT) -> int:
    """The neighbour count for N samples when none is set: k = min(default, max(2, floor(limit N))).

    At the paper's N >= 250 this is the default (25); below, k shrinks so that k / N stays within
    the documented limit (N = 60 gives k = 6; N = 12 gives k = 2, which is still flagged).

    Examples
    --------
    >>> choose_k(2000), choose_k(60), choose_k(12)
    (25, 6, 2)
    """
    return int(min(default, max(2, int(np.floor(limit * n)))))


def sets_k(metric: str) -> bool:
    """Whether a metric id names its neighbour count ("cknna-k25": yes; "cknna": no). A pairwise
    measure without k, and a per-model measure (intrinsic dimension keeps its estimator's k), count
    as set: :func:`scored_metric` leaves them as they are."""
    from matteralign.metrics import get_metric

    spec = get_metric(metric)
    if spec.definition.k_param is None or spec.per_model:
        return True
    match = spec.definition.match(str(metric).strip().lower())
    return match.groupdict().get(spec.definition.k_param) is not None


def study_metric_id(metric: str) -> str:
    """How a study names a metric: the canonical id, or for an id that leaves k unset the bare id
    ("cknna"), whose k is chosen per dataset (:func:`scored_metric`)."""
    from matteralign.metrics import get_metric

    return get_metric(metric).id if sets_k(metric) else str(metric).strip().lower()


def scored_metric(metric: str, n: int) -> MetricSpec:
    """The metric as scored on N samples: the one place the k-from-N rule is applied.

    An id that sets k (or a measure without k) is used as it is; an id that leaves k unset gets
    k = :func:`choose_k` (N, the family's default k), e.g. "cknna" is "cknna-k25" at N >= 250 and
    "cknna-k6" at N = 60.

    Examples
    --------
    >>> [scored_metric(m, 60).id for m in ("cknna", "cknna-k25", "mknn", "dcor")]
    ['cknna-k6', 'cknna-k25', 'mknn-k6', 'dcor']
    """
    from matteralign.metrics import get_metric

    spec = get_metric(metric)
    return spec if sets_k(metric) else spec.with_k(choose_k(n, default=spec.k))


def k_flags(metric: str, n: int, matrix: pd.DataFrame | None = None) -> list[str]:
    """Why the scores of a pairwise neighbour measure at this N need a caveat (empty: none).

    Flags k / N > :data:`K_OVER_N_LIMIT`, and off-diagonal values of a similarity outside
    [-1, 1] (CKNNA's estimator leaves its range from k / N ~ 0.4: 1.08 at N = 60, k = 25).

    Parameters
    ----------
    metric : str
        The scored id (k fixed).
    n : int
    matrix : (M, M) DataFrame, optional
        The scores, to count values outside [-1, 1].
    """
    from matteralign.metrics import get_metric

    spec = get_metric(metric)
    ratio = k_over_n(spec.id, n)
    if spec.per_model or ratio is None or ratio <= K_OVER_N_LIMIT:
        return []
    flags = [f"k / N = {spec.k} / {n} = {ratio:.2f} exceeds {K_OVER_N_LIMIT}; neighbour scores "
             "are unreliable here (CKNNA can leave [-1, 1]; leave k out of the id to pick it "
             "from N)"]
    if matrix is not None and spec.higher_is_more_similar:
        values = matrix.to_numpy(dtype=float).copy()
        np.fill_diagonal(values, np.nan)
        outside = np.abs(values) > 1.0 + 1e-12
        if outside.any():
            flags.append(f"{int(outside.sum())} of {int(np.isfinite(values).sum())} scores lie "
                         f"outside [-1, 1] (largest |score| {np.nanmax(np.abs(values)):.3f}) "
                         "because k / N is this large; they are not valid similarities")
    return flags


def k_over_n(metric: str, n: int) -> float | None:
    """k / N of a neighbour measure (None for a measure without k)."""
    from matteralign.metrics import get_metric

    k = get_metric(metric).k
    return None if k is None else float(k) / n


def rounds_for(metric: str, cheap: int, other: int) -> int:
    """Permutation rounds for a metric: ``cheap`` where a null round relabels per-model data
    (neighbour graphs of CKNNA and mutual kNN, distance ranks of II:
    :func:`~matteralign.metrics.calibration.has_relabelled_null`), ``other`` for measures that
    recompute a product of every pair per round (dCor, CKA, SVCCA, ...)."""
    from matteralign.metrics import get_metric
    from matteralign.metrics.calibration import has_relabelled_null

    return cheap if has_relabelled_null(get_metric(metric)) else other


def calibrate_matrices(
    values: Mapping[str, np.ndarray],
    matrices: Mapping[str, pd.DataFrame],
    dataset: str,
    rounds: Mapping[str, int],
    seed: int = 0,
    alpha: float = 0.05,
    preprocessing: Sequence[str] = (),
    groups: np.ndarray | None = None,
) -> pd.DataFrame:
    """Calibrate every pair of every matrix of one dataset against its permutation null.

    Parameters
    ----------
    values : mapping of model id to (N, D) array
        The embeddings the matrices were scored from (same N and order).
    matrices : mapping of metric id to (M, M) DataFrame
        Raw scores (e.g. what ``align`` wrote); reused as the observed values.
    dataset : str
    rounds : mapping of metric id to int
        Permutation rounds per metric (:func:`rounds_for`).
    groups : (N,) labels, optional
        Sample groups (e.g. structures of one composition). For the measures whose null is cheap
        (:func:`rounds_for`), a second null restricted to permutations within groups adds
        calibrated_within, p_within and p_fdr_within: alignment beyond what the groups share.

    Returns
    -------
    DataFrame
        One row per pair and metric: dataset, model_a, model_b, metric, raw, null_mean, null_sd,
        tau, calibrated, p_value, p_fdr (BH over the pairs of that matrix), headroom,
        null_fills_range, k_over_n, k_over_n_exceeded, n_permutations, seed, restricted
        [, calibrated_within, p_within, p_fdr_within].
    """
    from matteralign.metrics import get_metric
    from matteralign.metrics.calibration import calibrated_scores, has_relabelled_null

    frames = []
    for metric, mat in matrices.items():
        models = [m for m in mat.index if m in values]
        if len(models) < 2:
            continue
        sub = {m: values[m] for m in models}
        res = calibrated_scores(sub, metric, rounds[metric], seed, alpha=alpha,
                                observed=mat.loc[models, models], preprocessing=preprocessing,
                                progress=False)
        rows = res.rows
        if groups is not None and has_relabelled_null(get_metric(metric)):
            within = calibrated_scores(sub, metric, rounds[metric], seed, alpha=alpha,
                                       groups=groups, observed=mat.loc[models, models],
                                       preprocessing=preprocessing, progress=False).rows
            rows = rows.assign(calibrated_within=within.calibrated.to_numpy(),
                               p_within=within.p_value.to_numpy(),
                               p_fdr_within=within.p_fdr.to_numpy())
        n = next(iter(values.values())).shape[0]
        ratio = k_over_n(metric, n)
        frames.append(rows.assign(
            dataset=dataset, k_over_n=np.nan if ratio is None else ratio,
            k_over_n_exceeded=bool(ratio is not None and ratio > K_OVER_N_LIMIT)))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return out[["dataset", *[c for c in out.columns if c != "dataset"]]]
