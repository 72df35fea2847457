"""Leaderboard: each model's null-calibrated alignment to the strongest models, with intervals.

Calibrated score = clip((s - tau) / (1 - tau), 0, 1) with tau the 95 % quantile of the permutation
null (rows of the other model shuffled; Gröger et al. 2026): 0 is indistinguishable from chance, 1
is perfect; mirrored for dissimilarities (information imbalance), best score 0. In a study the
calibration is the matrices' own (``StudyAnalysis.calibrated``): one null per pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from matteralign.analysis.matrices import join_on_ids
from matteralign.store.embedding_store import EmbeddingStore, StoredEmbeddings

__all__ = ["CandidateScore", "leaderboard", "score_candidate", "strongest_models"]


def strongest_models(
    matrix: pd.DataFrame, mae: pd.Series | None = None, n: int = 3
) -> tuple[list[str], str]:
    """The reference models of the leaderboard.

    Parameters
    ----------
    matrix : (M, M) DataFrame
        A similarity matrix (higher = more aligned) of the models.
    mae : Series, optional
        Energy regression MAE per model (eV); when any model of ``matrix`` has one, the
        ``n`` lowest are the references.
    n : int

    Returns
    -------
    references : list of str
    basis : str
        ``"lowest energy MAE"`` or ``"consensus"`` (highest mean alignment to the other models,
        over the finite scores; a model with none, e.g. a degenerate embedding the metric scores
        NaN, ranks last).
    """
    models = list(matrix.index)
    if mae is not None:
        known = mae.reindex(models).dropna()
        if len(known):
            return list(known.nsmallest(n).index), "lowest energy MAE"
    values = matrix.loc[models, models].to_numpy(dtype=float).copy()
    np.fill_diagonal(values, np.nan)
    finite = np.isfinite(values)
    counts = finite.sum(axis=1)
    sums = np.where(finite, values, 0.0).sum(axis=1)
    mean = pd.Series(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan), index=models) \
        if len(models) > 1 else pd.Series(1.0, index=models)
    return list(mean.sort_values(ascending=False, kind="stable").index[:n]), "consensus"


def leaderboard(
    embeddings: Mapping[str, np.ndarray],
    references: Sequence[str],
    metric: str = "cknna-k25",
    n_permutations: int = 50,
    n_bootstrap: int = 30,
    level: float = 0.95,
    seed: int = 0,
    preprocessing: Sequence[str] = (),
    models: Sequence[str] | None = None,
    calibration: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each model's mean calibrated alignment to the references other than itself.

    Parameters
    ----------
    embeddings : mapping of model id to (N, D) array
        Same samples in the same order; must include the references.
    references : sequence of str
    metric : str
        Registry metric id (bootstrap from :mod:`matteralign.metrics`).
    n_permutations, n_bootstrap : int
        Rounds of the permutation null (only when ``calibration`` is not given) and of the sample
        bootstrap (seeded).
    level : float
        Interval coverage.
    models : sequence of str, optional
        Rows to report; default every model.
    calibration : DataFrame, optional
        The calibrated pairs of these embeddings and this metric, as
        :func:`~matteralign.metrics.calibration.calibrated_scores` rows (model_a, model_b, raw,
        null_mean, tau, calibrated, p_value), e.g. a study's ``StudyAnalysis.calibrated`` of one
        dataset and metric: reused, so the leaderboard and the matrix share one null per pair.
        Default: drawn here by the same function with ``n_permutations`` rounds.

    Returns
    -------
    DataFrame
        model, score (mean calibrated alignment), ci_low, ci_high (mean over references of the
        calibrated percentile-bootstrap bounds: conservative for the mean), raw (mean raw score),
        null_mean, max_p (largest permutation p-value over references), n_references,
        is_reference, metric; sorted by score, best first.
    """
    from matteralign import metrics
    from matteralign.metrics.calibration import calibrated_scores, calibrated_value

    spec = metrics.get_metric(metric)
    missing = [r for r in references if r not in embeddings]
    if missing:
        raise KeyError(f"reference models {missing} have no embeddings here")
    if calibration is None:
        calibration = calibrated_scores(embeddings, spec, n_permutations, seed,
                                        preprocessing=preprocessing, progress=False).rows
    boot = metrics.bootstrap_ci(embeddings, spec, n_bootstrap=n_bootstrap, seed=seed, level=level,
                                preprocessing=preprocessing, progress=False)
    null_at = {(r.model_a, r.model_b): r for r in calibration.itertuples()}
    boot_at = {(r.model_a, r.model_b): r for r in boot.itertuples()}

    def lookup(table, a, b, what):
        row = table.get((a, b)) or (table.get((b, a)) if spec.symmetric else None)
        if row is None:
            raise KeyError(f"no {what} of the pair ({a}, {b}) for {spec.id}")
        return row

    recs = []
    for model in (models or list(embeddings)):
        vals, lows, highs, raws, mus, ps = [], [], [], [], [], []
        for ref in references:
            if ref == model:
                continue
            nr = lookup(null_at, model, ref, "calibrated score")
            br = lookup(boot_at, model, ref, "sample interval")
            vals.append(nr.calibrated)
            bounds = sorted(float(calibrated_value(b, nr.tau, spec.higher_is_more_similar))
                            for b in (br.ci_low, br.ci_high))
            lows.append(bounds[0])
            highs.append(bounds[1])
            raws.append(nr.raw)
            mus.append(nr.null_mean)
            ps.append(nr.p_value)
        recs.append({
            "model": model, "score": float(np.mean(vals)) if vals else float("nan"),
            "ci_low": float(np.mean(lows)) if lows else float("nan"),
            "ci_high": float(np.mean(highs)) if highs else float("nan"),
            "raw": float(np.mean(raws)) if raws else float("nan"),
            "null_mean": float(np.mean(mus)) if mus else float("nan"),
            "max_p": float(np.max(ps)) if ps else float("nan"),
            "n_references": len(vals), "is_reference": model in references, "metric": spec.id,
        })
    table = pd.DataFrame(recs)
    return table.sort_values("score", ascending=False, na_position="last", kind="stable") \
        .reset_index(drop=True)


@dataclass
class CandidateScore:
    """A new model placed on a dataset's leaderboard.

    Attributes
    ----------
    table : DataFrame
        The leaderboard (references and candidate rows) from :func:`leaderboard`.
    n_shared : int
        Samples scored: ids the candidate shares with every reference.
    missing_from_candidate : list of str
        Ids the references have that the candidate lacks.
    unknown_to_store : list of str
        Ids of the candidate that the references lack.
    """

    table: pd.DataFrame
    n_shared: int
    missing_from_candidate: list[str] = field(default_factory=list)
    unknown_to_store: list[str] = field(default_factory=list)


def score_candidate(
    store: EmbeddingStore,
    dataset: str,
    name: str,
    ids: Sequence[str],
    values: np.ndarray,
    references: Mapping[str, str],
    metric: str = "cknna-k25",
    preprocessing: Sequence[str] = ("l2",),
    n_permutations: int = 50,
    n_bootstrap: int = 30,
    seed: int = 0,
) -> CandidateScore:
    """Place a candidate's embeddings (ids + vectors) on the leaderboard of stored references.

    Parameters
    ----------
    store : EmbeddingStore
    dataset : str
    name : str
        Label of the candidate (model id or file name); must not clash with a reference.
    ids : sequence of str
        Sample ids of the candidate's rows.
    values : (N, D) array
    references : mapping of model id to layer name
        The stored reference models and the layer of each to compare against.

    Raises
    ------
    StoreError
        If a reference is not stored, or the candidate shares no ids with the references.
    """
    if name in references:
        raise ValueError(f"candidate name {name!r} is also a reference model; rename it")
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] != len(ids):
        raise ValueError(f"candidate {name!r}: {len(ids)} ids but values of shape {values.shape}")
    stored = [store.load_finished(dataset, ref, layer) for ref, layer in references.items()]
    ref_ids = set(join_on_ids(stored).ids)
    candidate = StoredEmbeddings(name, dataset, "candidate", list(ids), values, None, [])
    aligned = join_on_ids([*stored, candidate])
    cand_ids = set(ids)
    table = leaderboard(aligned.values, list(references), metric, n_permutations, n_bootstrap,
                        seed=seed, preprocessing=preprocessing)
    return CandidateScore(
        table, len(aligned.ids), sorted(ref_ids - cand_ids), sorted(cand_ids - ref_ids)
    )
