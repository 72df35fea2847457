"""Permutation nulls and sample-resampling intervals for all model pairs, through the engine.

Seeded with numpy's default_rng, so reruns are bit-identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._backend import resolve_backend
from .calibration import calibrated_scores
from .engine import prepare_inputs, progress_bar, score_matrix
from .registry import MetricSpec, get_metric

__all__ = ["bootstrap_ci", "permutation_null"]


def _pairs(spec: MetricSpec, m: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(m) for b in range(m)
            if a != b and (not spec.symmetric or a < b)]


def permutation_null(
    embeddings: Mapping[str, Any],
    metric: str | MetricSpec,
    n_permutations: int = 1000,
    seed: int = 0,
    *,
    alpha: float = 0.05,
    groups: Sequence[Any] | np.ndarray | None = None,
    preprocessing: Sequence[str] = (),
    device: Any = "cpu",
    precision: str | None = None,
    progress: bool | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Permutation null of every pair: score(a, b[pi]) with b's rows shuffled.

    Round r draws one permutation pi_r (:func:`~.calibration.permutations`, free or within
    ``groups``) and applies it to the second model of every pair
    (:func:`~.calibration.null_matrices` reuses every model's per-model work).

    Returns
    -------
    DataFrame
        One row per pair (as in ``pairwise(...).rows``): value, null_mean, null_sd,
        z = (value - null_mean) / null_sd, p_value = (1 + #{null at least as aligned}) / (1 + R),
        tau (the (1 - alpha) null quantile, :func:`~.calibration.calibrate`), calibrated =
        clip((value - tau) / (s_best - tau), 0, 1) (Gröger et al. 2026; dissimilarities mirrored),
        p_fdr (Benjamini-Hochberg over the pairs), n_permutations, seed.
    """
    res = calibrated_scores(embeddings, metric, n_permutations, seed, alpha=alpha, groups=groups,
                            preprocessing=preprocessing, device=device, precision=precision,
                            progress=progress, **params)
    rows = res.rows.rename(columns={"raw": "value"})
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (rows.value - rows.null_mean) / rows.null_sd.where(rows.null_sd > 0)
    rows.insert(rows.columns.get_loc("null_sd") + 1, "z", z.astype(float))
    return rows


def bootstrap_ci(
    embeddings: Mapping[str, Any],
    metric: str | MetricSpec,
    n_bootstrap: int = 100,
    seed: int = 0,
    level: float = 0.95,
    *,
    method: str = "subsample",
    preprocessing: Sequence[str] = (),
    device: Any = "cpu",
    precision: str | None = None,
    progress: bool | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Sample-resampling intervals for every pair, without duplicated points by default.

    ``method="subsample"`` (default; Politis, Romano & Wolf 1999): round r draws b = floor(N / 2)
    distinct samples without replacement (``default_rng(seed)``), shared by all models, and
    rescores every pair (with k scaled to round(k b / N), at least 1, for neighbour measures, so
    k / N is kept). With s_N the full-data score and s_b^(r) the subsample scores, the interval is

        [s_N - sqrt(b / N) (q_hi - s_N),  s_N - sqrt(b / N) (q_lo - s_N)]

    where q_lo, q_hi are the (1 - level)/2 and (1 + level)/2 quantiles of s_b^(r) (the root
    sqrt(b) (s_b - s_N) stands in for sqrt(N) (s_N - s)). No point is ever duplicated, so
    neighbour and distance statistics see the geometry they see on the full data.

    ``method="bootstrap"``: N indices with replacement; copies of one sample are kept out of each
    other's neighbour lists (kNN metrics, II, IdCor), but distance and kernel statistics (dCor,
    CKA) still see zero-distance duplicates; percentile interval of the resampled scores.

    Returns
    -------
    DataFrame
        One row per pair: value (full data), boot_mean, boot_sd (of the resampled scores), ci_low,
        ci_high, method, resample_size, n_bootstrap, seed. Rounds scoring NaN (a degenerate
        resample, or a pair the metric cannot score at all) are left out of these statistics; a
        pair with no finite round has NaN boot_mean, ci_low and ci_high, and boot_sd is NaN
        below two finite rounds.
    """
    spec = get_metric(metric, **params)
    if spec.per_model:
        raise ValueError(f"{spec.id} is a per-model metric; use it on resampled arrays directly.")
    if method not in ("subsample", "bootstrap"):
        raise ValueError(f"method must be 'subsample' or 'bootstrap', not {method!r}")
    be = resolve_backend(device, precision)
    names, xs = prepare_inputs(embeddings, spec, preprocessing)
    m, n = len(xs), xs[0].shape[0]
    value, _ = score_matrix(spec, xs, names, be, progress=False)
    rng = np.random.default_rng(seed)
    size = n // 2 if method == "subsample" else n
    rspec = spec
    if method == "subsample" and spec.k is not None:
        rspec = spec.with_k(max(1, round(spec.k * size / n)))
    boots = np.empty((n_bootstrap, m, m))
    with progress_bar(n_bootstrap, f"{spec.id}: {method}", progress) as adv:
        for r in range(n_bootstrap):
            if method == "subsample":
                idx = np.sort(rng.choice(n, size, replace=False))
                boots[r], _ = score_matrix(rspec, [x[idx] for x in xs], names, be, progress=False)
            else:
                idx = np.sort(rng.integers(0, n, n))
                boots[r], _ = score_matrix(spec, [x[idx] for x in xs], names, be, progress=False,
                                           groups=idx)
            adv(1)
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    recs = []
    for a, b in _pairs(spec, m):
        v = float(value[a, b])
        bt = boots[:, a, b][np.isfinite(boots[:, a, b])]  # a degenerate round scores NaN
        nan = float("nan")
        q_lo, q_hi = ((float(np.quantile(bt, lo_q)), float(np.quantile(bt, hi_q))) if bt.size
                      else (nan, nan))
        if method == "subsample":
            f = np.sqrt(size / n)
            q_lo, q_hi = v - f * (q_hi - v), v - f * (q_lo - v)
        recs.append({"model_a": names[a], "model_b": names[b], "metric": spec.id,
                     "value": v, "boot_mean": float(bt.mean()) if bt.size else nan,
                     "boot_sd": float(bt.std(ddof=1)) if bt.size > 1 else nan,
                     "ci_low": q_lo, "ci_high": q_hi, "method": method, "resample_size": size,
                     "n_bootstrap": n_bootstrap, "seed": seed})
    return pd.DataFrame(recs)
