"""Permutation nulls and bootstrap intervals for all model pairs, batched through the engine.

Seeded with numpy's default_rng, so reruns are bit-identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._backend import resolve_backend
from .engine import kernel_for, prepare_inputs, progress_bar, score_matrix
from .registry import MetricSpec, get_metric

__all__ = ["bootstrap_ci", "permutation_null"]


def _pairs(spec: MetricSpec, m: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(m) for b in range(m)
            if a != b and (not spec.symmetric or a < b)]


def permutation_null(
    embeddings: Mapping[str, Any],
    metric: str | MetricSpec,
    n_permutations: int = 100,
    seed: int = 0,
    *,
    preprocessing: Sequence[str] = (),
    device: Any = "cpu",
    precision: str | None = None,
    progress: bool | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Permutation null of every pair: score(a, b[pi]) with b's rows shuffled.

    Round r draws one permutation pi_r (``default_rng(seed)``) and applies it to the second model of
    every pair. Work is reused: kNN graphs are relabelled (pi^-1 o N_b o pi, no new neighbour
    search), CKA/SVCCA/Procrustes/ridge states have their rows permuted, and the streamed metrics
    (dCor, RBF CKA, II, IdCor) score all pairs of a round in one pass against the permuted tiles,
    with self terms cached. RSA recomputes the permuted model's ranks.

    Returns
    -------
    DataFrame
        One row per pair (as in ``pairwise(...).rows``): value, null_mean, null_sd,
        z = (value - null_mean) / null_sd, p_value = (1 + #{null at least as aligned}) / (1 + R),
        calibrated = (value - null_mean) / (1 - null_mean) for similarities (1 = perfect,
        0 = chance) or (null_mean - value) / null_mean for dissimilarities (II, Procrustes).
    """
    spec = get_metric(metric, **params)
    if spec.per_model:
        raise ValueError(
            f"{spec.id} is a per-model metric; a pair permutation null does not apply.")
    be = resolve_backend(device, precision)
    names, xs = prepare_inputs(embeddings, spec, preprocessing)
    m, n = len(xs), xs[0].shape[0]
    value, _ = score_matrix(spec, xs, names, be, progress=False)
    rng = np.random.default_rng(seed)
    null = np.empty((n_permutations, m, m))
    kern = kernel_for(spec, be)
    pairs = _pairs(spec, m)
    if kern.streamed:
        cache = kern.self_terms(xs, names)
    else:
        states = [kern.prepare(x, nm) for x, nm in zip(xs, names, strict=True)]
    with progress_bar(n_permutations, f"{spec.id}: permutations", progress) as adv:
        for r in range(n_permutations):
            perm = rng.permutation(n)
            if kern.streamed:
                null[r] = kern.matrix(xs, [x[perm] for x in xs], names, None, self_cache=cache)
            else:
                used = sorted({b for _, b in pairs})
                pst = {b: kern.permute(states[b], xs[b], perm) for b in used}
                for a, b in pairs:
                    null[r, a, b] = kern.pair(states[a], pst[b])[0]
            adv(1)
    recs = []
    for a, b in pairs:
        v, nl = float(value[a, b]), null[:, a, b]
        mu, sd = float(nl.mean()), float(nl.std(ddof=1)) if n_permutations > 1 else float("nan")
        if spec.higher_is_more_similar:
            p = (1 + np.sum(nl >= v)) / (1 + n_permutations)
            cal = (v - mu) / (1 - mu)
        else:
            p = (1 + np.sum(nl <= v)) / (1 + n_permutations)
            cal = (mu - v) / mu
        recs.append({"model_a": names[a], "model_b": names[b], "metric": spec.id, "value": v,
                     "null_mean": mu, "null_sd": sd, "z": (v - mu) / sd if sd > 0 else float("nan"),
                     "p_value": float(p), "calibrated": float(cal),
                     "n_permutations": n_permutations, "seed": seed})
    return pd.DataFrame(recs)


def bootstrap_ci(
    embeddings: Mapping[str, Any],
    metric: str | MetricSpec,
    n_bootstrap: int = 100,
    seed: int = 0,
    level: float = 0.95,
    *,
    preprocessing: Sequence[str] = (),
    device: Any = "cpu",
    precision: str | None = None,
    progress: bool | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Percentile bootstrap intervals over samples for every pair.

    Round r resamples N sample indices with replacement (``default_rng(seed)``), shared by all
    models, and rescores every pair through the engine: per-model work is done once per round for
    all M models, not once per pair. Copies of one sample are never each other's neighbours
    (kNN metrics, II, IdCor exclude same-sample copies by index, like self).

    Returns
    -------
    DataFrame
        One row per pair: value (full data), boot_mean, boot_sd, ci_low, ci_high (the
        (1 - level)/2 and (1 + level)/2 percentiles), n_bootstrap, seed.
    """
    spec = get_metric(metric, **params)
    if spec.per_model:
        raise ValueError(f"{spec.id} is a per-model metric; use it on resampled arrays directly.")
    be = resolve_backend(device, precision)
    names, xs = prepare_inputs(embeddings, spec, preprocessing)
    m, n = len(xs), xs[0].shape[0]
    value, _ = score_matrix(spec, xs, names, be, progress=False)
    rng = np.random.default_rng(seed)
    boots = np.empty((n_bootstrap, m, m))
    with progress_bar(n_bootstrap, f"{spec.id}: bootstrap", progress) as adv:
        for r in range(n_bootstrap):
            idx = np.sort(rng.integers(0, n, n))
            boots[r], _ = score_matrix(spec, [x[idx] for x in xs], names, be, progress=False,
                                       groups=idx)
            adv(1)
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    recs = []
    for a, b in _pairs(spec, m):
        bt = boots[:, a, b]
        recs.append({"model_a": names[a], "model_b": names[b], "metric": spec.id,
                     "value": float(value[a, b]), "boot_mean": float(np.nanmean(bt)),
                     "boot_sd": float(np.nanstd(bt, ddof=1)) if n_bootstrap > 1 else float("nan"),
                     "ci_low": float(np.nanquantile(bt, lo_q)),
                     "ci_high": float(np.nanquantile(bt, hi_q)),
                     "n_bootstrap": n_bootstrap, "seed": seed})
    return pd.DataFrame(recs)
